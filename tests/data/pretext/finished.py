"""Float parts of pretext dataset items: the worker stage's samples through the device stage."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.utils.data import default_collate

from ssl_rl.data.pretext.two_stage import RawSample


def finished(dataset: Any, index: int) -> Tensor:
    """``dataset[index]`` as float parts (n, C, h, w)."""
    return dataset.transform.finish(default_collate([dataset[index]]))[0]


def finished_batch(dataset: Any, batch: RawSample) -> Tensor:
    """A loader's collated batch of ``dataset`` items as float parts (B, n, C, h, w)."""
    return dataset.transform.finish(batch)
