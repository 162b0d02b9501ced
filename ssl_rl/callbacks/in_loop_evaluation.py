"""Evaluations inside the training loop (the policy's measurements, NN retrieval), announced to
the callbacks that care: the throughput monitor stops its clock, the divergence guard settles a
check it keeps on the device before anything evaluates the weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytorch_lightning as pl


@contextmanager
def evaluation_in_training(trainer: pl.Trainer) -> Iterator[None]:
    """Calls ``on_evaluation_start(trainer)`` / ``on_evaluation_end(trainer)`` of every callback
    that has them around the block."""
    callbacks = list(trainer.callbacks)  # type: ignore[attr-defined]
    for callback in callbacks:
        start = getattr(callback, "on_evaluation_start", None)
        if start is not None:
            start(trainer)
    try:
        yield
    finally:
        for callback in callbacks:
            end = getattr(callback, "on_evaluation_end", None)
            if end is not None:
                end(trainer)
