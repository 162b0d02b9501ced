"""Did π learn anything? A shuffled-reward replay of the learner gives the noise band.

The learner's updates are a deterministic function of what an episode recorded: the state
ŝ_t, the action counts and the reward r_t. Replaying a fresh learner (same initial weights,
same settings) over the recorded episodes reproduces the run's π exactly; replaying it with
the rewards shuffled across episodes breaks the link between what was chosen and what it
earned while keeping everything else (states, actions, reward distribution, optimiser).
Whatever π does under shuffled rewards is noise: the entropy bonus, the moving baseline, the
optimiser's step size, the actions' own sampling. The real π's movement is judged against it.

Statistic: the mean over episodes of π's excess mass on the hardest groups,
π_t(hard) − |hard|_t / |Ψ| (its mass beyond the neutral, size-proportional share). The
p-value for "π moved toward the hard groups beyond noise" is
(1 + #{shuffles ≥ real}) / (1 + shuffles), a permutation test conditional on the recorded
states and actions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from ssl_rl.policy.network import size_shares
from ssl_rl.policy.reinforce import ReinforceLearner


@dataclass(frozen=True)
class NoiseTest:
    """The real π's hard-group mass against the shuffled-reward band."""

    p_value: float  # one-sided: π moved toward the hard groups beyond noise
    statistic: float  # mean excess hard mass of the real π
    null_mean: float  # mean of the statistic under shuffled rewards
    null_std: float
    hard_mass: list[float]  # real π(hard) per episode (before its update)
    neutral_mass: list[float]  # size share of the hard groups per episode
    band_low: list[float]  # per episode, the 5 % quantile of π(hard) under shuffled rewards
    band_high: list[float]  # ... and the 95 % quantile
    shuffles: int

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def replay_hard_mass(
    make_learner: Callable[[], ReinforceLearner],
    states: Tensor,
    counts: Tensor,
    rewards: Sequence[float] | NDArray[np.float64],
    hard: Sequence[int],
) -> Tensor:
    """π_t(hard) for every episode t of a fresh learner fed the recorded episodes, (T,)."""
    learner = make_learner()
    groups = torch.arange(counts.shape[1])
    masses = torch.empty(len(rewards), dtype=torch.float64)
    hard_index = torch.as_tensor(list(hard), dtype=torch.long)
    for t, reward in enumerate(rewards):
        with torch.no_grad():
            probs = learner.policy.probabilities(states[t])
        masses[t] = float(probs[hard_index].sum())
        learner.record(states[t], torch.repeat_interleave(groups, counts[t]), float(reward))
    return masses


def noise_test(
    make_learner: Callable[[], ReinforceLearner],
    states: Tensor,
    counts: Tensor,
    rewards: Sequence[float],
    hard: Sequence[int],
    shuffles: int = 200,
    seed: int = 0,
) -> NoiseTest:
    """The real π's excess mass on ``hard`` groups vs ``shuffles`` shuffled-reward replays.

    ``states`` (T, |C|, 2), ``counts`` (T, |C|) actions per group, ``rewards`` (T,). Needs
    at least two episodes (one has nothing to shuffle).
    """
    same_length = len(rewards) == states.shape[0] == counts.shape[0]
    if states.ndim != 3 or counts.ndim != 2 or not same_length:
        raise ValueError(
            "noise_test needs states (T, |C|, 2), counts (T, |C|) and T rewards; got "
            f"{tuple(states.shape)}, {tuple(counts.shape)} and {len(rewards)}"
        )
    if len(rewards) < 2:
        raise ValueError("the noise test needs at least two episodes")
    counts = counts.long()
    hard_index = torch.as_tensor(list(hard), dtype=torch.long)
    neutral = size_shares(states.double())[:, hard_index].sum(dim=1)
    real = replay_hard_mass(make_learner, states, counts, rewards, hard)
    rng = np.random.default_rng(seed)
    reward_array = np.asarray(rewards, dtype=np.float64)
    null = torch.stack(
        [
            replay_hard_mass(make_learner, states, counts, rng.permutation(reward_array), hard)
            for _ in range(shuffles)
        ]
    )
    return judge(real, null, neutral, shuffles)


def judge(real: Tensor, null: Tensor, neutral: Tensor, shuffles: int) -> NoiseTest:
    """The real π(hard) per episode (T,) against ``shuffles`` replays (shuffles, T), each as
    excess over the hard groups' size share ``neutral`` (T,)."""
    statistic = float((real - neutral).mean())
    null_statistics = (null - neutral).mean(dim=1)
    exceed = int((null_statistics >= statistic - 1e-12).sum())
    low, high = torch.quantile(null, torch.tensor([0.05, 0.95], dtype=null.dtype), dim=0)
    return NoiseTest(
        p_value=(1 + exceed) / (1 + shuffles),
        statistic=statistic,
        null_mean=float(null_statistics.mean()),
        null_std=float(null_statistics.std()) if shuffles > 1 else 0.0,
        hard_mass=real.tolist(),
        neutral_mass=neutral.tolist(),
        band_low=low.tolist(),
        band_high=high.tolist(),
        shuffles=shuffles,
    )
