"""Group credit (``credit``): the rl mode's groups and actions, π from each group's own change.

Same validations, k-means groups and one action per sample as the paper's policy; instead of
one REINFORCE update from the episode's single reward, each group rank is credited with what
its own permutations' errors did over the episode (``ssl_rl.policy.credit``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ssl_rl.policy.credit import (
    CreditStats,
    accumulate,
    credit_probabilities,
    empty_stats,
    episode_stats,
    relative_draws,
    shrunk_values,
)
from ssl_rl.policy.modes.base import GroupedPolicy, PolicyStep
from ssl_rl.policy.modes.grouped import GroupedMode
from ssl_rl.policy.network import size_shares
from ssl_rl.policy.reinforce import ReinforceLearner
from ssl_rl.policy.replay import NoiseTest, judge
from ssl_rl.policy.seeds import TaskSeeds


@dataclass(frozen=True)
class CreditSettings:
    """``policy.credit``: τ of π ∝ |c_j| exp(β_j / τ), its trust region and the per-episode
    decay of the sums."""

    temperature: float = 0.01  # in units of β: the error drop per episode one nat of KL costs
    max_kl: float = 0.2  # nats: how far π may move from the group sizes
    memory: float = 0.99  # weight kept per episode (about 100 episodes)

    def __post_init__(self) -> None:
        if self.temperature <= 0.0:
            raise ValueError(f"policy.credit.temperature must be > 0, got {self.temperature}")
        if self.max_kl <= 0.0:
            raise ValueError(f"policy.credit.max_kl must be > 0, got {self.max_kl}")
        if not 0.0 <= self.memory <= 1.0:
            raise ValueError(f"policy.credit.memory must be in [0, 1], got {self.memory}")


class EpisodeRecord(dict[str, Tensor]):
    """What one episode gave the credit: labels, x and y per permutation, group shares."""


def replay_hard_mass(
    records: Sequence[Mapping[str, Tensor]],
    drops: Sequence[Tensor],
    hard: Sequence[int],
    settings: CreditSettings,
    floor: float,
) -> Tensor:
    """π_t(hard) per episode of a fresh credit learner fed the records with ``drops`` as y."""
    k = records[0]["shares"].numel()
    hard_index = torch.as_tensor(list(hard), dtype=torch.long)
    stats = empty_stats(k)
    masses = torch.empty(len(records), dtype=torch.float64)
    for t, (record, y) in enumerate(zip(records, drops, strict=True)):
        probs = credit_probabilities(
            record["shares"], shrunk_values(stats), settings.temperature, floor, settings.max_kl
        )
        masses[t] = float(probs[hard_index].sum())
        new = episode_stats(record["labels"], record["x"], y, k)
        stats = accumulate(stats, new, settings.memory)
    return masses


class CreditMode(GroupedMode):
    """k-means groups of s as in ``rl``; π_j ∝ |c_j| exp(β_j / τ) from per-group credit."""

    name = "credit"

    def init_state(self, num_perms: int, seeds: TaskSeeds) -> None:
        super().init_state(num_perms, seeds)
        settings = self.settings
        try:
            self.credit = CreditSettings(**settings.credit)
        except TypeError as error:
            raise ValueError(
                "policy.credit accepts temperature, max_kl and memory, got "
                f"{sorted(settings.credit)}"
            ) from error
        self.num_perms = num_perms
        self.stats = empty_stats(settings.num_groups)
        self.records: list[EpisodeRecord] = []
        self._errors: Tensor | None = None  # the latest validation's per-permutation errors
        self._open: EpisodeRecord | None = None  # labels, shares and errors at E_t
        self._draws: Tensor | None = None

    def on_validation(self, permutation_errors: Tensor) -> None:
        self._errors = permutation_errors.detach().cpu().double()

    def act(self, s: Tensor, opening: bool) -> GroupedPolicy:
        """Regroup the permutations on ``s``; π from the group ranks' credit so far."""
        settings = self.settings
        groups = self.group(s)
        shares = size_shares(groups.state.cpu().double())
        values = shrunk_values(self.stats)
        credit = self.credit
        probs = credit_probabilities(
            shares, values, credit.temperature, settings.floor, credit.max_kl
        )
        probs = probs.float()
        labels = groups.labels.cpu()
        if opening and self._errors is None:
            raise RuntimeError("the credit mode opened an episode before any validation")
        self.draw_from(labels, probs, opening)
        if opening:
            assert self._errors is not None
            self._open = EpisodeRecord(labels=labels, shares=shares, start=self._errors)
        fingerprint = torch.cat([labels.double(), probs.double(), *self.stats])
        return GroupedPolicy(groups=groups, probs=probs, fingerprint=fingerprint)

    def on_episode_draws(self, draws: Tensor) -> None:
        self._draws = draws

    def update(self, state: Tensor | None, reward: float) -> PolicyStep:
        """Credit every group rank with its own permutations' error drops over the episode."""
        actions = self.comm.gather(self.sampler.pop_actions())
        self.sampler.record_actions = False
        counts = torch.bincount(actions, minlength=self.settings.num_groups)
        opened, draws, end = self._open, self._draws, self._errors
        self._open, self._draws = None, None
        if opened is None or draws is None or end is None or draws.numel() == 0:
            raise RuntimeError(
                "the credit mode closed an episode without its opening, draws or validation"
            )
        record = EpisodeRecord(
            labels=opened["labels"],
            shares=opened["shares"],
            x=relative_draws(draws, self.num_perms),
            y=opened["start"] - end,
        )
        new = episode_stats(record["labels"], record["x"], record["y"], self.settings.num_groups)
        self.stats = accumulate(self.stats, new, self.credit.memory)
        self.records.append(record)
        return PolicyStep(counts=counts, updates=[])

    def replay_learner(self) -> Callable[[], ReinforceLearner] | None:
        return None  # no REINFORCE learner; replay_noise_test replays the credit instead

    def replay_noise_test(self, hard: Sequence[int], shuffles: int, seed: int) -> NoiseTest | None:
        """π's excess hard mass against replays with the episodes' error drops shuffled.

        Shuffling y across episodes keeps every episode's groups, draws and sizes and the
        drops' distribution, but breaks the link between what was drawn and what changed.
        """
        records = self.records
        if len(records) < 2 or shuffles < 1:
            return None
        drops = [record["y"] for record in records]
        floor = self.settings.floor
        real = replay_hard_mass(records, drops, hard, self.credit, floor)
        rng = np.random.default_rng(seed)
        null = torch.stack(
            [
                replay_hard_mass(
                    records,
                    [drops[i] for i in rng.permutation(len(drops))],
                    hard,
                    self.credit,
                    floor,
                )
                for _ in range(shuffles)
            ]
        )
        hard_index = torch.as_tensor(list(hard), dtype=torch.long)
        neutral = torch.stack([record["shares"][hard_index].sum() for record in records])
        return judge(real, null, neutral, shuffles)

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "learner": None,
            "kmeans_generator": self.kmeans_generator.get_state(),
            "initial_learner": None,
            "credit": copy.deepcopy(
                {
                    "stats": self.stats._asdict(),
                    "records": [dict(r) for r in self.records],
                    "errors": self._errors,
                    "open": None if self._open is None else dict(self._open),
                }
            ),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.kmeans_generator.set_state(state["kmeans_generator"])
        credit = copy.deepcopy(state["credit"])
        self.stats = CreditStats(**credit["stats"])
        self.records = [EpisodeRecord(r) for r in credit["records"]]
        self._errors = credit["errors"]
        self._open = None if credit["open"] is None else EpisodeRecord(credit["open"])
