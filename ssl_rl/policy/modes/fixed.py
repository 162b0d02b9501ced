"""Modes that do not learn: uniform sampling (``monitor``) and the error-proportional control."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from ssl_rl.policy.modes.base import GroupedPolicy, PolicyMode, PolicyStep
from ssl_rl.policy.reinforce import ReinforceLearner
from ssl_rl.policy.samplers import ErrorProportionalSampler, UniformSampler


class _FixedMode(PolicyMode):
    """Draws from its sampler; no groups, no learner, nothing to update."""

    def on_validation(self, permutation_errors: Tensor) -> None:
        pass

    def act(self, s: Tensor, opening: bool) -> GroupedPolicy | None:
        return None

    def update(self, state: Tensor | None, reward: float) -> PolicyStep | None:
        return None

    def replay_learner(self) -> Callable[[], ReinforceLearner] | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "learner": None,
            "kmeans_generator": None,  # no grouping; the key keeps every mode's state alike
            "initial_learner": None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])


class UniformMode(_FixedMode):
    """Every permutation equally likely; the validations only measure (``monitor``)."""

    name = "monitor"

    def make_sampler(self, num_perms: int, seed: int) -> UniformSampler:
        return UniformSampler(num_perms, seed=seed)


class ErrorProportionalMode(_FixedMode):
    """Permutations drawn in proportion to their latest validation error (``errprop``)."""

    name = "errprop"
    sampler: ErrorProportionalSampler

    def make_sampler(self, num_perms: int, seed: int) -> ErrorProportionalSampler:
        return ErrorProportionalSampler(num_perms, seed=seed, floor=self.settings.errprop_floor)

    def on_validation(self, permutation_errors: Tensor) -> None:
        self.sampler.set_errors(permutation_errors)
