"""A run that fails by an exception saves everything it has reached before it exits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn

from ssl_rl.checkpoints.atomic_io import save_last
from ssl_rl.data.worker_deaths import defer_worker_deaths
from ssl_rl.run.errors import RunStopped

log = logging.getLogger(__name__)


class SaveOnFailure(pl.Callback):
    """On an exception in ``fit`` (a loader worker killed, a file that raises, a callback's
    bug) ``last.ckpt`` is written with the whole state, as a stop signal writes it.

    Not after a stop (:class:`RunStopped`: a signal saves by itself, a diverged run keeps its
    last good checkpoint), nor when a weight or optimiser tensor is not finite, nor with
    several processes (the other ranks would wait in the save's barrier). While training, a
    dead loader worker is reported at the next batch of its loader
    (:func:`~ssl_rl.data.worker_deaths.defer_worker_deaths`), so the save falls on a step
    boundary. ``failure`` holds what ``summary.json`` records: the error's type and message,
    the step, and the checkpoint or why there is none. An error in the save is logged and
    recorded; the run's own error is the one raised.
    """

    def __init__(self) -> None:
        self.failure: dict[str, Any] | None = None
        self._restore: Callable[[], None] | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore = defer_worker_deaths()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._put_back_handler()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        try:
            self._save_after(trainer, pl_module, exception)
        finally:
            self._put_back_handler()

    def _save_after(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, Exception) or isinstance(exception, RunStopped):
            return  # Ctrl-C twice, exits, stops and divergence have their own endings
        if trainer.state.fn != TrainerFn.FITTING:
            return
        step = trainer.global_step
        failure: dict[str, Any] = {
            "error_type": type(exception).__name__,
            "error_message": str(exception),
            "failed_step": step,
        }
        self.failure = failure
        if trainer.world_size > 1:
            failure["checkpoint_error"] = "not saved: the other processes are not at the step"
            return
        bad = non_finite_tensors(pl_module, trainer.optimizers)
        if bad:
            failure["checkpoint_error"] = f"not saved: {bad[0]} is not finite"
            log.error("%s is not finite: no checkpoint of the failed state", bad[0])
            return
        try:
            failure["checkpoint"] = save_last(trainer)
        except Exception as error:  # the run's own error must not be hidden by this one
            failure["checkpoint_error"] = repr(error)
            log.exception("saving the failed run's checkpoint failed as well")
            return
        log.info("failed at step %d: saved %s", step, failure["checkpoint"])

    def _put_back_handler(self) -> None:
        if self._restore is not None:
            self._restore()
            self._restore = None


def non_finite_tensors(
    module: torch.nn.Module, optimizers: list[torch.optim.Optimizer]
) -> list[str]:
    """Names of the module's parameters and buffers and of the optimiser states that hold a
    NaN or an infinity."""
    named = [*module.named_parameters(), *module.named_buffers()]
    for index, optimizer in enumerate(optimizers):
        for state in optimizer.state.values():
            named += [(f"optimizer {index} {k}", v) for k, v in state.items()]
    return [
        name
        for name, value in named
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]
