"""Restart optimisation at a phase start: the optimisers and lr schedulers as first built.

Works for any ``torch.optim`` optimiser and any scheduler whose progress lives in its
``state_dict`` (StepLR, MultiStepLR, cosine, warm-up chains, OneCycle, ...): the
hyperparameters of every param group (lr, initial_lr, momentum, ...) and each scheduler's
state are recorded before the first step and put back later; per-parameter state (momentum
buffers, Adam moments) is cleared.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer


@dataclass(frozen=True)
class FreshOptimization:
    param_groups: list[list[dict[str, Any]]]  # per optimiser, per group: all but "params"
    schedulers: list[dict[str, Any]]  # state_dict of each scheduler

    @classmethod
    def capture(
        cls, optimizers: Sequence[Optimizer], schedulers: Sequence[Any]
    ) -> FreshOptimization:
        """Record the current (freshly built) optimisers and schedulers."""
        groups = [
            [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in o.param_groups]
            for o in optimizers
        ]
        return cls(groups, [copy.deepcopy(s.state_dict()) for s in schedulers])

    def restore(self, optimizers: Sequence[Optimizer], schedulers: Sequence[Any]) -> None:
        """Clear per-parameter state, put back the group hyperparameters and scheduler states."""
        if len(optimizers) != len(self.param_groups) or len(schedulers) != len(self.schedulers):
            raise RuntimeError("optimisers or schedulers changed since they were captured")
        for optimizer, fresh_groups in zip(optimizers, self.param_groups, strict=True):
            optimizer.state.clear()
            for group, fresh in zip(optimizer.param_groups, fresh_groups, strict=True):
                group.update(copy.deepcopy(fresh))
        for scheduler, state in zip(schedulers, self.schedulers, strict=True):
            scheduler.load_state_dict(copy.deepcopy(state))
