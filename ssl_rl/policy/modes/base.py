"""The interface every policy mode implements: how permutations are drawn during episodes.

A mode owns its task's sampler. The episode logic (``ssl_rl.policy.episodes``) tells it about
each validation, asks it to act on the state s (fix its sampling distribution until the next
validation) and, when an episode closes, to learn from the episode's reward.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, NamedTuple

from torch import Tensor

from ssl_rl.policy.communicator import Communicator
from ssl_rl.policy.groups import GroupAssignment
from ssl_rl.policy.reinforce import PolicyUpdate, ReinforceLearner
from ssl_rl.policy.replay import NoiseTest
from ssl_rl.policy.samplers import RecordingSampler
from ssl_rl.policy.seeds import TaskSeeds


@dataclass(frozen=True)
class ModeSettings:
    """The settings of every mode; each mode reads the ones it needs."""

    num_groups: int = 10  # |C|
    hidden: int = 16
    activation: str = "tanh"
    neutral_start: bool = True
    floor: float = 0.0  # π's mix with the size-proportional distribution
    normalize_counts: bool = True
    samples_per_action: int = 1
    kmeans_iters: int = 100
    kmeans_inits: int = 10
    learner: Mapping[str, Any] = field(default_factory=dict)  # ReinforceLearner keywords
    errprop_floor: float = 0.1  # uniform share of the error-proportional control
    credit: Mapping[str, Any] = field(default_factory=dict)  # CreditSettings keywords

    def for_task(self, overrides: Mapping[str, Any], num_classes: int) -> ModeSettings:
        """These settings with a task's own (``tasks.<name>.policy``), and never more groups
        than the task has classes (rotation: 4)."""
        unknown = sorted(set(overrides) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(
                f"a task's policy settings {unknown} are not policy settings; "
                f"known: {[f.name for f in fields(self)]}"
            )
        task_settings = replace(self, **overrides)
        return replace(task_settings, num_groups=min(task_settings.num_groups, num_classes))


class GroupedPolicy(NamedTuple):
    """What a learning mode set on a new state: the groups of s and π over them."""

    groups: GroupAssignment
    probs: Tensor  # π(· | ŝ), (|C|,) on the CPU
    fingerprint: Tensor  # 1-D: everything that must be identical on every rank


class PolicyStep(NamedTuple):
    """What a learning mode did with a finished episode."""

    counts: Tensor  # actions per group over all ranks, (|C|,) long
    updates: list[PolicyUpdate]  # REINFORCE updates made (none while a return waits)


class PolicyMode(ABC):
    """One way to draw permutations; ``name`` is the config's ``policy.mode``."""

    name: ClassVar[str]
    sampler: RecordingSampler

    def __init__(
        self,
        settings: ModeSettings,
        num_perms: int,
        seeds: TaskSeeds,
        comm: Communicator | None = None,
    ) -> None:
        self.settings = settings
        self.comm = comm or Communicator()
        self.sampler = self.make_sampler(num_perms, seeds.sampler)
        self.init_state(num_perms, seeds)

    def init_state(self, num_perms: int, seeds: TaskSeeds) -> None:
        """The mode's own state, made once its sampler exists (subclasses extend it)."""
        return None

    @abstractmethod
    def make_sampler(self, num_perms: int, seed: int) -> RecordingSampler:
        """The sampler the task's training draws its permutations from."""

    @abstractmethod
    def on_validation(self, permutation_errors: Tensor) -> None:
        """A validation measured these per-permutation errors, (|Ψ|,) on the CPU."""

    @abstractmethod
    def act(self, s: Tensor, opening: bool) -> GroupedPolicy | None:
        """Fix the sampling distribution for the state ``s`` until the next validation.

        ``opening``: the distribution acts in an episode, so its actions are recorded for the
        update. Returns the groups and π for modes that have them.
        """

    def on_episode_draws(self, draws: Tensor) -> None:
        """The permutations drawn in the closing episode (all ranks'), before :meth:`update`."""
        return None  # only modes that learn from the draws keep them

    @abstractmethod
    def update(self, state: Tensor | None, reward: float) -> PolicyStep | None:
        """Learn from the closed episode (its ŝ_t and r_t); None for modes that do not learn."""

    @abstractmethod
    def replay_learner(self) -> Callable[[], ReinforceLearner] | None:
        """Fresh learners as this mode's learner started (for the noise test), or None."""

    def replay_noise_test(self, hard: Sequence[int], shuffles: int, seed: int) -> NoiseTest | None:
        """The noise test of a mode that replays itself (not through :meth:`replay_learner`)."""
        return None

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """``sampler``, ``learner``, ``kmeans_generator`` and ``initial_learner``."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (other keys are ignored)."""
