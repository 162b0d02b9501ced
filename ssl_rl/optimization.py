"""Optimiser set-up shared by the pretraining module and the transfer protocols."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


def trunk_and_new_groups(
    new: Iterable[nn.Parameter],
    trunk: Iterable[nn.Parameter],
    optimizer_factory: Callable[..., torch.optim.Optimizer],
    trunk_lr_scale: float,
) -> list[dict[str, Any]]:
    """Parameter groups: the new layers at the base lr, the trunk at ``trunk_lr_scale`` times it
    (the factory's own lr when it names one; otherwise the trunk keeps the default)."""
    trunk_group: dict[str, Any] = {"params": list(trunk)}
    base_lr = getattr(optimizer_factory, "keywords", {}).get("lr")
    if base_lr is not None:
        trunk_group["lr"] = base_lr * trunk_lr_scale
    return [{"params": list(new)}, trunk_group]


def with_step_scheduler(
    optimizer: torch.optim.Optimizer, scheduler_factory: Callable[..., Any] | None
) -> Any:
    """Lightning's ``configure_optimizers`` value: the optimiser, and its lr scheduler stepped
    every training step when there is one."""
    if scheduler_factory is None:
        return optimizer
    scheduler = scheduler_factory(optimizer=optimizer)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
