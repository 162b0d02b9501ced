"""Stops a run at the first non-finite loss, before it reaches the weights or a checkpoint."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from ssl_rl.run_errors import RunDiverged


class DivergenceGuard(pl.Callback):
    """Raises :class:`RunDiverged` when a step's loss is NaN or infinite.

    Runs before the backward pass, so the optimiser never applies that step and no checkpoint
    holds it: the last periodic checkpoint stays the last good state. Per-task losses come
    from the module's ``step_losses`` (when it has them), so the message names the task.
    """

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Tensor
    ) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        # Every rank must stop together, or the others wait for it forever.
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        step_losses: dict[str, Tensor] = getattr(pl_module, "step_losses", {})
        tasks = [t for t, v in step_losses.items() if not bool(torch.isfinite(v).all())]
        value = float(step_losses[tasks[0]]) if tasks else float(loss.detach().float().mean())
        raise diverged(trainer, pl_module, trainer.global_step, tasks[0] if tasks else "", value)


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
