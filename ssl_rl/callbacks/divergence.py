"""Stops a run at the first non-finite loss, before it reaches the weights or a checkpoint."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from ssl_rl.run.errors import RunDiverged


class DivergenceGuard(pl.Callback):
    """Raises :class:`RunDiverged` when a step's loss is NaN or infinite.

    ``check_every_n_steps`` = 1: the loss is read on the host before the backward pass, so the
    optimiser never applies that step and no checkpoint holds it (one host synchronisation per
    step). N > 1: the check stays on the device; the first non-finite step, its task and value
    are kept there without a synchronisation and read every N steps, before every checkpoint,
    validation and in-loop evaluation, and at the end. The run then stops naming that step;
    the weights in memory have taken the steps after it, but no checkpoint and no evaluation
    does, so the last checkpoint is the last good state.
    Per-task losses come from the module's ``step_losses`` (when it has them), so the message
    names the task.
    """

    def __init__(self, check_every_n_steps: int = 1) -> None:
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps
        self._tasks: list[str] = []
        self._lookups: dict[tuple[str, ...], Tensor] = {}
        # On the device: the first bad step (-1: none), its task's index and its loss value.
        self._first: Tensor | None = None
        self._task: Tensor | None = None
        self._value: Tensor | None = None

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Tensor
    ) -> None:
        step_losses: dict[str, Tensor] = getattr(pl_module, "step_losses", {}) or {"": loss}
        if self.check_every_n_steps > 1:
            self._record(trainer.global_step, step_losses)
            return
        bad = not bool(torch.isfinite(loss.detach()).all())
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        tasks = [t for t, v in step_losses.items() if not bool(torch.isfinite(v).all())]
        value = float(step_losses[tasks[0]]) if tasks else float(loss.detach().float().mean())
        raise diverged(trainer, pl_module, trainer.global_step, tasks[0] if tasks else "", value)

    def _record(self, step: int, step_losses: dict[str, Tensor]) -> None:
        values = torch.stack([v.detach().float().mean() for v in step_losses.values()])
        device = values.device
        if self._first is None:
            self._first = torch.full((), -1, dtype=torch.long, device=device)
            self._task = torch.zeros((), dtype=torch.long, device=device)
            self._value = torch.zeros((), device=device)
        names = tuple(step_losses)
        if names not in self._lookups:  # task positions in self._tasks, once per task set
            self._tasks += [t for t in names if t not in self._tasks]
            positions = [self._tasks.index(t) for t in names]
            self._lookups[names] = torch.tensor(positions, device=device)
        assert self._task is not None and self._value is not None  # set with self._first
        bad = ~torch.isfinite(values)
        new = bad.any() & (self._first < 0)
        task = bad.int().argmax()
        self._first = torch.where(new, step, self._first)
        self._task = torch.where(new, self._lookups[names][task], self._task)
        self._value = torch.where(new, values[task], self._value)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        if trainer.global_step % self.check_every_n_steps == 0:
            self._raise_if_diverged(trainer, pl_module)

    def on_evaluation_start(self, trainer: pl.Trainer) -> None:
        """Before the policy or a monitor evaluates the weights (:mod:`in_loop_evaluation`);
        some run on rank 0 alone, so this rank decides alone (no collective to wait in)."""
        self._raise_if_diverged(trainer, trainer.lightning_module, collective=False)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.training:
            self._raise_if_diverged(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._raise_if_diverged(trainer, pl_module)  # before the file is written

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._raise_if_diverged(trainer, pl_module)

    def _read(self) -> tuple[int, str, float] | None:
        """The first non-finite step, its task and value (one host read), or None."""
        if self._first is None or self._task is None or self._value is None:
            return None
        first, task, value = torch.stack(
            [self._first.double(), self._task.double(), self._value.double()]
        ).tolist()
        if first < 0:
            return None
        return int(first), self._tasks[int(task)], value

    def _raise_if_diverged(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, collective: bool = True
    ) -> None:
        if self.check_every_n_steps == 1:
            return  # every step was checked as it came
        found = self._read()
        if collective:
            found_anywhere = trainer.strategy.reduce_boolean_decision(found is not None, all=False)
        else:
            found_anywhere = found is not None
        if not found_anywhere:
            return
        step, task, value = found or (trainer.global_step, "", float("nan"))
        raise diverged(trainer, pl_module, step, task, value)


def diverged(
    trainer: pl.Trainer,
    pl_module: pl.LightningModule,
    step: int,
    task: str,
    value: float,
    what: str = "loss",
) -> RunDiverged:
    """The :class:`RunDiverged` for ``what`` of ``task`` being ``value`` at ``step``."""
    lr = _base_lr(pl_module)
    checkpoint = _last_checkpoint(trainer)
    subject = f"the {task} {what}" if task else f"the {what}"
    message = (
        f"training diverged at step {step}: {subject} is {value}. Likely cause: a learning rate "
        f"too high (model.optimizer.lr={lr}) or the numeric precision "
        f"(trainer.precision={trainer.precision}); lower the learning rate or use "
        "trainer.precision=32-true. "
        + (
            f"The last good checkpoint, {checkpoint}, is untouched."
            if checkpoint
            else "No checkpoint was written before it."
        )
    )
    return RunDiverged(
        message, diverged_step=step, diverged_task=task or None, checkpoint=checkpoint
    )


def _base_lr(pl_module: pl.LightningModule) -> Any:
    factory = getattr(pl_module, "optimizer_factory", None)
    return getattr(factory, "keywords", {}).get("lr", "?")


def _last_checkpoint(trainer: pl.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
    return path or None
