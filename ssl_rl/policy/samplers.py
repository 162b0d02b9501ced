"""Samplers that pick the permutation class index for each training sample.

All share one interface (:class:`PermutationSampler`). Each owns a seeded CPU
``torch.Generator`` whose state is part of its ``state_dict``, so a resumed run draws the same
permutations; results are moved to the requested device afterwards (the draws are a few
hundred integers per step, and CPU generation keeps them identical on every device).

Every sampler can keep the permutations it draws (``record_draws``) until :meth:`pop_draws`:
the policy callback bins an episode's draws by difficulty for Fig. 4, whatever the sampler.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from ssl_rl.data.host_to_device import to_device_async

logger = logging.getLogger(__name__)


@runtime_checkable
class PermutationSampler(Protocol):
    num_perms: int

    def draw(self, n: int, device: torch.device | str) -> Tensor:
        """``n`` permutation indices in [0, num_perms) as a long tensor on ``device``."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class RecordingSampler(PermutationSampler, Protocol):
    """A sampler that keeps what it draws while ``record_draws`` is set (every sampler here)."""

    record_draws: bool

    def pop_draws(self) -> Tensor:
        """The permutations drawn since the last call (CPU long tensor), and forget them."""
        ...


class _SeededSampler:
    def __init__(self, num_perms: int, seed: int) -> None:
        if num_perms < 1:
            raise ValueError(f"num_perms must be >= 1, got {num_perms}")
        self.num_perms = num_perms
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)
        self.record_draws = False
        self._draws: list[Tensor] = []

    def _emit(self, perms: Tensor, device: torch.device | str) -> Tensor:
        """Keep the CPU draws if recording, and hand them out on ``device``."""
        if self.record_draws:
            self._draws.append(perms)
        return to_device_async(perms, device)

    def pop_draws(self) -> Tensor:
        """The permutations drawn since the last call (CPU long tensor), and forget them."""
        draws = torch.cat(self._draws) if self._draws else torch.empty(0, dtype=torch.long)
        self._draws = []
        return draws

    def _uniform_perms(self, n: int) -> Tensor:
        return torch.randint(self.num_perms, (n,), generator=self.generator)

    def _check_vector(self, values: Tensor, length: int, name: str) -> Tensor:
        if values.shape != (length,):
            raise ValueError(f"{name} must have shape ({length},), got {tuple(values.shape)}")
        values = values.detach().to("cpu", torch.float64)
        if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
            raise ValueError(f"{name} must be finite and non-negative, got {values.tolist()[:8]}")
        return values

    def _base_state(self) -> dict[str, Any]:
        return {
            "num_perms": self.num_perms,
            "generator": self.generator.get_state().clone(),
            "record_draws": self.record_draws,
            "draws": torch.cat(self._draws) if self._draws else torch.empty(0, dtype=torch.long),
        }

    def _load_base_state(self, state: dict[str, Any]) -> None:
        if int(state["num_perms"]) != self.num_perms:
            raise ValueError(
                f"sampler state is for {state['num_perms']} permutations, this sampler has "
                f"{self.num_perms}: the permutation set changed since the checkpoint"
            )
        self.generator.set_state(state["generator"].clone())
        self.record_draws = bool(state.get("record_draws", False))
        draws = state.get("draws")
        self._draws = [draws.clone()] if draws is not None and draws.numel() else []


class UniformSampler(_SeededSampler):
    """Every permutation equally likely: the random baseline of previous work."""

    def __init__(self, num_perms: int, seed: int = 0) -> None:
        super().__init__(num_perms, seed)

    def draw(self, n: int, device: torch.device | str) -> Tensor:
        return self._emit(self._uniform_perms(n), device)

    def state_dict(self) -> dict[str, Any]:
        return self._base_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base_state(state)


class GroupPolicySampler(_SeededSampler):
    """The policy's action: a group from π, then a uniform permutation in it per sample.

    An action covers ``samples_per_action`` consecutive samples of a draw: 1 is the paper's
    one action per training sample [paper]; larger values make an episode's few actions
    differ more from each other, so its reward has something to be attributed to
    [decision, config]. Each sample of an action still gets its own uniform permutation from
    the chosen group. The drawn groups (the actions a_k) are kept until :meth:`pop_actions`;
    set ``record_actions = False`` while the policy is fixed and no update needs them. Without
    groups the sampler is uniform over permutations; with groups but no probabilities it draws
    groups in proportion to their size, which is again uniform over permutations.
    """

    def __init__(
        self,
        num_perms: int,
        num_groups: int = 10,
        seed: int = 0,
        record_actions: bool = True,
        samples_per_action: int = 1,
    ) -> None:
        super().__init__(num_perms, seed)
        if num_groups < 1:
            raise ValueError(f"num_groups must be >= 1, got {num_groups}")
        if samples_per_action < 1:
            raise ValueError(f"samples_per_action must be >= 1, got {samples_per_action}")
        self.num_groups = num_groups
        self.samples_per_action = samples_per_action
        self.record_actions = record_actions
        self._labels: Tensor | None = None
        self._members = torch.empty(0, dtype=torch.long)
        self._offsets = torch.zeros(num_groups + 1, dtype=torch.long)
        self._counts = torch.zeros(num_groups, dtype=torch.long)
        self._probs: Tensor | None = None
        self._actions: list[Tensor] = []
        self._warned_empty = False

    @property
    def group_sizes(self) -> Tensor:
        """Permutations per group, (num_groups,) long; zeros before any groups are set."""
        return self._counts.clone()

    def set_groups(self, labels: Tensor) -> None:
        """Group index in [0, num_groups) of every permutation, shape (num_perms,)."""
        if labels.shape != (self.num_perms,) or labels.dtype != torch.long:
            raise ValueError(
                f"group labels must be a long tensor of shape ({self.num_perms},), "
                f"got {labels.dtype} of shape {tuple(labels.shape)}"
            )
        labels = labels.detach().cpu().clone()
        if int(labels.min()) < 0 or int(labels.max()) >= self.num_groups:
            raise ValueError(
                f"group labels must lie in [0, {self.num_groups}), "
                f"got [{int(labels.min())}, {int(labels.max())}]"
            )
        self._labels = labels
        self._members = torch.argsort(labels, stable=True)
        self._counts = torch.bincount(labels, minlength=self.num_groups)
        self._offsets = torch.cat([torch.zeros(1, dtype=torch.long), self._counts.cumsum(0)])
        self._warned_empty = False

    def set_group_probs(self, probs: Tensor) -> None:
        """π(c | ŝ) over the groups, shape (num_groups,); renormalised here."""
        probs = self._check_vector(probs, self.num_groups, "group probabilities")
        total = float(probs.sum())
        if total <= 0.0:
            raise ValueError("group probabilities sum to 0")
        self._probs = probs / total
        self._warned_empty = False

    def draw(self, n: int, device: torch.device | str) -> Tensor:
        if self._labels is None:
            return self._emit(self._uniform_perms(n), device)
        probs = self._probs if self._probs is not None else self._counts / self.num_perms
        probs = probs * (self._counts > 0)
        if float(probs.sum()) <= 0.0:
            if not self._warned_empty:
                logger.warning(
                    "all policy probability is on empty permutation groups (sizes %s); "
                    "drawing permutations uniformly until new groups or probabilities are set",
                    self._counts.tolist(),
                )
                self._warned_empty = True
            perms = self._uniform_perms(n)
            actions = self._labels[perms]
        else:
            num_actions = -(-n // self.samples_per_action)
            actions = torch.multinomial(
                probs, num_actions, replacement=True, generator=self.generator
            )
            groups = actions.repeat_interleave(self.samples_per_action)[:n]
            sizes = self._counts[groups]
            within = (torch.rand(n, generator=self.generator, dtype=torch.float64) * sizes).long()
            within = torch.minimum(within, sizes - 1)
            perms = self._members[self._offsets[groups] + within]
        if self.record_actions:
            self._actions.append(actions)
        return self._emit(perms, device)

    def pop_actions(self) -> Tensor:
        """The groups drawn since the last call (CPU long tensor), and forget them."""
        actions = torch.cat(self._actions) if self._actions else torch.empty(0, dtype=torch.long)
        self._actions = []
        return actions

    def state_dict(self) -> dict[str, Any]:
        state = self._base_state()
        state.update(
            num_groups=self.num_groups,
            samples_per_action=self.samples_per_action,
            record_actions=self.record_actions,
            labels=None if self._labels is None else self._labels.clone(),
            probs=None if self._probs is None else self._probs.clone(),
            actions=torch.cat(self._actions) if self._actions else torch.empty(0, dtype=torch.long),
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base_state(state)
        if int(state["num_groups"]) != self.num_groups:
            raise ValueError(
                f"sampler state has {state['num_groups']} groups, this sampler {self.num_groups}"
            )
        self.record_actions = bool(state["record_actions"])
        self._labels = None
        self._counts = torch.zeros(self.num_groups, dtype=torch.long)
        if state["labels"] is not None:
            self.set_groups(state["labels"])
        self._probs = None if state["probs"] is None else state["probs"].clone()
        actions = state["actions"]
        self._actions = [actions.clone()] if actions.numel() else []


class ErrorProportionalSampler(_SeededSampler):
    """Non-learned control: permutations drawn in proportion to their validation error.

    p_i = (1 - floor) · e_i / Σ e + floor / |Ψ|: a share ``floor`` of the draws stays uniform so
    permutations solved on the validation set are still trained (their error there is only an
    estimate from |X_val| samples, and they would otherwise be forgotten). All-zero errors give
    the uniform distribution. Uniform before the first :meth:`set_errors`.
    """

    def __init__(self, num_perms: int, seed: int = 0, floor: float = 0.1) -> None:
        super().__init__(num_perms, seed)
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"floor must be in [0, 1], got {floor}")
        self.floor = floor
        self._probs: Tensor | None = None

    @property
    def probabilities(self) -> Tensor:
        """The current draw probability of every permutation, (num_perms,) float64."""
        if self._probs is None:
            return torch.full((self.num_perms,), 1.0 / self.num_perms, dtype=torch.float64)
        return self._probs.clone()

    def set_errors(self, per_perm_error: Tensor) -> None:
        """Per-permutation validation error, shape (num_perms,) (see ``per_permutation_error``)."""
        errors = self._check_vector(per_perm_error, self.num_perms, "per-permutation errors")
        total = float(errors.sum())
        uniform = torch.full_like(errors, 1.0 / self.num_perms)
        if total <= 0.0:
            self._probs = uniform
        else:
            self._probs = (1.0 - self.floor) * errors / total + self.floor * uniform

    def draw(self, n: int, device: torch.device | str) -> Tensor:
        if self._probs is None:
            return self._emit(self._uniform_perms(n), device)
        perms = torch.multinomial(self._probs, n, replacement=True, generator=self.generator)
        return self._emit(perms, device)

    def state_dict(self) -> dict[str, Any]:
        state = self._base_state()
        state.update(floor=self.floor, probs=None if self._probs is None else self._probs.clone())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base_state(state)
        self.floor = float(state["floor"])
        self._probs = None if state["probs"] is None else state["probs"].clone()
