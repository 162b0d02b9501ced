"""Stop signals end a run at the next step boundary with a checkpoint of everything."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytorch_lightning as pl

from ssl_rl.checkpoints.atomic_io import save_last
from ssl_rl.run.errors import RunInterrupted

log = logging.getLogger(__name__)

_Handler = Callable[[int, FrameType | None], Any] | int | None


class GracefulStop(pl.Callback):
    """SIGTERM, SIGINT and a scheduler's requeue signal: finish the step, save, stop.

    The handlers are installed at train start, over Lightning's SIGTERM handler, whose
    ``received_sigterm`` makes the loop raise after the step without a checkpoint. The first
    Ctrl-C stops at the step boundary, a second one interrupts at once. Under submitit
    (``hydra/launcher=submitit_slurm``) its requeue signal (SIGUSR2) is caught too, and
    submitit's own handler, which requeues the job, runs once the checkpoint and summary are
    written. At the boundary every rank agrees,
    ``last.ckpt`` is saved where :class:`~pytorch_lightning.callbacks.ModelCheckpoint` puts it,
    and :class:`RunInterrupted` ends ``fit``.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, _Handler] = {}
        self._requeue: _Handler = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.signum = None
        self._install(signal.SIGTERM, self._on_signal)
        self._install(signal.SIGINT, self._on_sigint)
        previous = signal.getsignal(signal.SIGUSR2) if hasattr(signal, "SIGUSR2") else None
        if callable(previous):  # submitit's requeue handler
            self._requeue = previous
            self._install(signal.SIGUSR2, self._on_signal)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        signum = self.signum
        if not trainer.strategy.reduce_boolean_decision(signum is not None, all=False):
            return
        signum = signum or signal.SIGTERM  # another rank got it
        path = save_last(trainer)
        name = signal.Signals(signum).name
        then = None
        if signum != signal.SIGINT and signum != signal.SIGTERM and callable(self._requeue):
            handler = self._requeue
            then = lambda: handler(signum, None)  # noqa: E731
        raise RunInterrupted(
            f"{name} received: stopped after step {trainer.global_step}, checkpoint {path}; "
            f"continue with `python train.py resume={trainer.default_root_dir}`",
            signum,
            then,
            signal=name,
            checkpoint=path,
        )

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    # ----------------------------------------------------------------- signals
    def _install(self, signum: int, handler: Callable[[int, FrameType | None], None]) -> None:
        self._previous.setdefault(signum, signal.getsignal(signum))
        signal.signal(signum, handler)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.warning("%s received: stopping after this step", signal.Signals(signum).name)
        self.signum = signum

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop at once
        self._on_signal(signum, frame)
