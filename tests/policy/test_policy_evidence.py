"""The policy's evidence: neutral start, difficulty quartiles and the shuffled-reward noise test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_rl.policy import GroupPolicySampler, PolicyNetwork, ReinforceLearner
from ssl_rl.policy.difficulty import bin_shares, error_quantile_bins, hard_groups
from ssl_rl.policy.network import size_shares
from ssl_rl.policy.replay import noise_test, replay_hard_mass

K = 10
SIZES = torch.tensor([30, 15, 10, 8, 7, 6, 6, 6, 6, 6])  # hard groups large, as at the demo


def _state(sizes: torch.Tensor = SIZES, seed: int = 0) -> torch.Tensor:
    medians = torch.sort(torch.rand(K, generator=torch.Generator().manual_seed(seed)))[0]
    return torch.stack([sizes.float() / sizes.sum(), 0.8 + 0.4 * medians], dim=1)


def _policy(**kwargs) -> PolicyNetwork:
    torch.manual_seed(0)
    return PolicyNetwork(K, 16, neutral_start=True, **kwargs)


# ----------------------------------------------------------------- neutral start
def test_neutral_start_draws_every_permutation_equally_often() -> None:
    """π ∝ |c_j| at the start: group draws uniform over permutations, within sampling error."""
    state = _state()
    probs = _policy().probabilities(state).detach()
    torch.testing.assert_close(probs, SIZES.float() / SIZES.sum())

    labels = torch.repeat_interleave(torch.arange(K), SIZES)  # 100 permutations
    sampler = GroupPolicySampler(int(SIZES.sum()), K, seed=3)
    sampler.set_groups(labels)
    sampler.set_group_probs(probs)
    n = 200_000
    counts = torch.bincount(sampler.draw(n, "cpu"), minlength=100).double()
    expected = n / 100
    # Pearson's χ² with 99 degrees of freedom: mean 99, sd 14; 160 is beyond p = 1e-4.
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 160, chi2
    # A π uniform over groups is far from it: the small groups' permutations 5× as often.
    uniform_groups = PolicyNetwork(K, 16).probabilities(state).detach()
    torch.testing.assert_close(uniform_groups, torch.full((K,), 0.1))


def test_neutral_start_gives_empty_groups_nothing_and_stays_finite() -> None:
    sizes = SIZES.clone()
    sizes[9] = 0
    policy = _policy(floor=0.2)
    learner = ReinforceLearner(policy, entropy="permutations")
    probs = policy.probabilities(_state(sizes))
    assert probs[9] == 0 and torch.isclose(probs.sum(), torch.tensor(1.0))
    for reward in (0.1, -0.3, 0.5):
        learner.record(_state(sizes), torch.tensor([0, 1, 1, 3]), reward)
    assert all(torch.isfinite(p).all() for p in policy.parameters())


def test_floor_keeps_every_group_above_its_share() -> None:
    policy = _policy(floor=0.25)
    with torch.no_grad():
        policy.output.bias.copy_(torch.tensor([20.0] + [0.0] * (K - 1)))
    probs = policy.probabilities(_state()).detach()
    shares = size_shares(_state())
    assert torch.all(probs >= 0.25 * shares - 1e-7)
    assert probs[0] == pytest.approx(0.75 + 0.25 * float(shares[0]), abs=1e-6)


def test_permutation_entropy_bonus_is_largest_at_the_neutral_start() -> None:
    """Entropy alone (no reward signal) keeps π at the neutral start over permutations; the
    entropy over groups drags it towards the small groups."""
    final = {}
    for kind in ("permutations", "groups"):
        learner = ReinforceLearner(_policy(), lr=0.05, entropy_weight=1.0, entropy=kind)
        for _ in range(60):
            learner.record(_state(), torch.tensor([0]), 0.0)
        final[kind] = learner.policy.probabilities(_state()).detach()
    shares = size_shares(_state())
    torch.testing.assert_close(final["permutations"], shares, atol=1e-3, rtol=0)
    assert final["groups"][0] < shares[0] - 0.05  # the big hard group loses mass


def test_normalized_advantage_makes_the_step_independent_of_reward_scale() -> None:
    runs = {}
    for scale in (1.0, 1000.0):
        learner = ReinforceLearner(_policy(), lr=0.01, optimizer="sgd", normalize_advantage=True)
        generator = torch.Generator().manual_seed(0)
        for _ in range(20):
            actions = torch.randint(K, (8,), generator=generator)
            learner.record(_state(), actions, scale * float(torch.randn(1, generator=generator)))
        runs[scale] = learner.policy.probabilities(_state()).detach()
    torch.testing.assert_close(runs[1.0], runs[1000.0], atol=1e-5, rtol=0)


# ----------------------------------------------------------------- difficulty quartiles
def test_quantile_bins_are_equal_sized_hardest_first_with_tiebreak() -> None:
    errors = torch.tensor([0.9, 0.1, 0.5, 0.5, 0.5, 0.0, 0.9, 0.3])
    tiebreak = torch.tensor([1.0, 1.0, 1.2, 0.8, 1.0, 1.0, 0.9, 1.0])  # lower ratio = harder
    bins = error_quantile_bins(errors, tiebreak, bins=4)
    # order: 6 (0.9, 0.9), 0 (0.9, 1.0), 3, 4, 2 (0.5 by ratio), 7, 1, 5
    assert bins.tolist() == [0, 3, 2, 1, 1, 3, 0, 2]
    assert torch.bincount(bins).tolist() == [2, 2, 2, 2]
    assert error_quantile_bins(torch.zeros(10), bins=4).bincount().tolist() == [3, 2, 3, 2]


def test_bin_shares_and_uniform_draws_land_a_quarter_in_each_bin() -> None:
    bins = error_quantile_bins(torch.rand(100, generator=torch.Generator().manual_seed(1)))
    assert bin_shares(torch.tensor([], dtype=torch.long), bins, 4) == [0.0] * 4
    draws = torch.randint(100, (40_000,), generator=torch.Generator().manual_seed(2))
    np.testing.assert_allclose(bin_shares(draws, bins, 4), [0.25] * 4, atol=0.01)
    assert hard_groups(10) == [0, 1, 2]


# ----------------------------------------------------------------- the noise test
def _make_learner() -> ReinforceLearner:
    torch.manual_seed(5)
    return ReinforceLearner(
        PolicyNetwork(K, 16, neutral_start=True),
        lr=0.005,
        optimizer="sgd",
        normalize_advantage=True,
    )


def _episodes(seed: int, episodes: int, effect: float) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Run a learner on a bandit whose reward grows with the share of hard-group actions
    (``effect`` per unit share, 0 = pure noise); 8 actions per episode."""
    generator = torch.Generator().manual_seed(seed)
    learner = _make_learner()
    hard = torch.tensor(hard_groups(K))
    states, counts, rewards = [], [], []
    for t in range(episodes):
        state = _state(seed=seed * 1000 + t)
        with torch.no_grad():
            probs = learner.policy.probabilities(state)
        actions = torch.multinomial(probs, 8, replacement=True, generator=generator)
        hard_share = float(torch.isin(actions, hard).float().mean())
        reward = effect * hard_share + 0.05 * float(torch.randn(1, generator=generator))
        learner.record(state, actions, reward)
        states.append(state)
        counts.append(torch.bincount(actions, minlength=K))
        rewards.append(reward)
    return torch.stack(states), torch.stack(counts), rewards


def test_replay_reproduces_the_learner_exactly() -> None:
    states, counts, rewards = _episodes(seed=0, episodes=12, effect=0.1)
    learner = _make_learner()
    expected = []
    groups = torch.arange(K)
    for t in range(12):
        with torch.no_grad():
            expected.append(float(learner.policy.probabilities(states[t])[:3].sum()))
        learner.record(states[t], torch.repeat_interleave(groups, counts[t]), rewards[t])
    replayed = replay_hard_mass(_make_learner, states, counts, rewards, [0, 1, 2])
    np.testing.assert_allclose(replayed.numpy(), expected, rtol=0, atol=1e-12)


def test_rewarded_hard_actions_leave_the_noise_band() -> None:
    states, counts, rewards = _episodes(seed=1, episodes=40, effect=0.3)
    result = noise_test(_make_learner, states, counts, rewards, hard_groups(K), shuffles=49)
    assert result.p_value == pytest.approx(1 / 50), result  # beyond every shuffle
    assert result.statistic > result.null_mean + 3 * result.null_std
    assert result.hard_mass[-1] > result.band_high[-1]
    assert len(result.band_low) == len(result.hard_mass) == 40


def test_rewards_unrelated_to_actions_stay_inside_the_noise_band() -> None:
    p_values = []
    for seed in range(10):
        states, counts, rewards = _episodes(seed=100 + seed, episodes=20, effect=0.0)
        result = noise_test(
            _make_learner, states, counts, rewards, hard_groups(K), shuffles=19, seed=seed
        )
        p_values.append(result.p_value)
    inside = sum(p > 0.05 for p in p_values)
    assert inside >= 9, p_values  # ≥ 90 % of seeds


def test_noise_test_rejects_bad_input() -> None:
    states, counts, rewards = _episodes(seed=0, episodes=3, effect=0.0)
    with pytest.raises(ValueError, match="T rewards"):
        noise_test(_make_learner, states, counts, rewards[:2], [0])
    with pytest.raises(ValueError, match="two episodes"):
        noise_test(_make_learner, states[:1], counts[:1], rewards[:1], [0])
