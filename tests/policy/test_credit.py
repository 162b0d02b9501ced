"""Per-group credit (``policy=credit``): the pure functions by hand, then the mode."""

from __future__ import annotations

import math

import pytest
import torch

from ssl_rl.policy import ModeSettings, TaskSeeds, make_mode
from ssl_rl.policy.credit import (
    CreditStats,
    accumulate,
    credit_probabilities,
    empty_stats,
    episode_stats,
    kl_from_shares,
    relative_draws,
    shrunk_values,
    slopes,
)
from ssl_rl.policy.difficulty import hard_groups
from ssl_rl.policy.modes import CreditMode
from ssl_rl.policy.modes.credit import CreditSettings, replay_hard_mass

D = torch.float64


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=D)


def test_relative_draws_are_counts_in_units_of_the_uniform_share() -> None:
    # 4 draws over 4 permutations: uniform would give each 1.
    assert relative_draws(torch.tensor([0, 0, 1, 3]), 4).tolist() == [2.0, 1.0, 0.0, 1.0]
    assert relative_draws(torch.tensor([2, 2]), 4).tolist() == [0.0, 0.0, 4.0, 0.0]
    with pytest.raises(ValueError, match="drawn permutations"):
        relative_draws(torch.empty(0, dtype=torch.long), 4)


def test_episode_sums_are_centred_within_each_group() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    x = _t(0, 1, 2, 1, 3, 5)
    y = _t(1, 2, 3, 0, 0, 9)
    stats = episode_stats(labels, x, y, k=4)
    # group 0: x̄ = 1, ȳ = 2, dx = dy = (-1, 0, 1); group 1: dx = (-1, 1), dy = 0;
    # group 2 has one member (nothing varies), group 3 is empty.
    assert stats.points.tolist() == [3, 2, 1, 0]
    assert stats.cells.tolist() == [1, 1, 1, 0]
    assert stats.sxx.tolist() == [2, 2, 0, 0]
    assert stats.sxy.tolist() == [2, 0, 0, 0]
    assert stats.syy.tolist() == [2, 0, 0, 0]
    # A shift shared by a group's members (its trend, its regression to the mean) is no credit.
    shifted = episode_stats(labels, x, y + _t(5, 5, 5, -1, -1, 0), k=4)
    assert torch.equal(shifted.sxy, stats.sxy) and torch.equal(shifted.syy, stats.syy)


def test_accumulate_decays_the_old_sums() -> None:
    old = CreditStats(*(_t(2, 4) for _ in CreditStats._fields))
    new = CreditStats(*(_t(1, 0) for _ in CreditStats._fields))
    for total in accumulate(old, new, memory=0.5):
        assert total.tolist() == [2.0, 2.0]
    assert all(
        torch.equal(a, b) for a, b in zip(accumulate(empty_stats(2), new, 1.0), new, strict=True)
    )
    with pytest.raises(ValueError, match="memory"):
        accumulate(old, new, memory=1.5)


def test_slope_and_standard_error_by_hand() -> None:
    # x = 0..3, y = (0, 1, 1, 3): x̄ = 1.5, ȳ = 1.25, Sxx = 5, Sxy = 4.5, Syy = 4.75,
    # β = 0.9, RSS = 4.75 − 0.9 · 4.5 = 0.7 on 4 − 1 − 1 = 2 degrees of freedom,
    # se² = 0.35 / 5 = 0.07.
    stats = episode_stats(torch.zeros(4, dtype=torch.long), _t(0, 1, 2, 3), _t(0, 1, 1, 3), 2)
    beta, se = slopes(stats)
    assert beta.tolist() == pytest.approx([0.9, 0.0])
    assert se[0].item() == pytest.approx(math.sqrt(0.07))
    assert math.isinf(se[1].item())  # an empty group: no evidence


def test_differences_from_the_pooled_slope_shrink_by_their_standard_error() -> None:
    # Slopes 3, 1 and a group without variation; pooled (4 / 2) = 2. 12 points in one cell:
    # 10 degrees of freedom; Syy chosen so that RSS = 2.5: σ² = 0.25, se² = 0.25.
    stats = CreditStats(
        points=_t(12, 12, 1),
        cells=_t(1, 1, 1),
        sxx=_t(1, 1, 0),
        sxy=_t(3, 1, 0),
        syy=_t(9 + 2.5, 1 + 2.5, 0),
    )
    # d = ±1, kept (1 − 0.25 / 1) = 0.75; the group without variation gets the pooled slope.
    assert shrunk_values(stats).tolist() == pytest.approx([2.75, 1.25, 2.0])
    # Noise larger than the differences: every group gets the pooled slope.
    noisy = stats._replace(syy=_t(9 + 20, 1 + 20, 0))
    assert shrunk_values(noisy).tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert shrunk_values(empty_stats(3)).tolist() == [0.0, 0.0, 0.0]


def test_probabilities_tilt_the_sizes_by_exp_value_over_temperature() -> None:
    shares = _t(0.5, 0.5, 0.0)
    # exp(ln 3) = 3: (1.5, 0.5, 0) / 2; floor 0.2 mixes in the shares.
    probs = credit_probabilities(shares, _t(0.01 * math.log(3), 0, 0), 0.01, floor=0.2)
    assert probs.tolist() == pytest.approx([0.8 * 0.75 + 0.1, 0.8 * 0.25 + 0.1, 0.0])
    # Equal values (any common shift): π is the group sizes, uniform over permutations.
    assert credit_probabilities(shares, _t(7, 7, 7), 0.01, 0.1).tolist() == pytest.approx(
        [0.5, 0.5, 0.0]
    )
    with pytest.raises(ValueError, match="temperature"):
        credit_probabilities(shares, _t(0, 0, 0), 0.0, 0.1)


def test_the_trust_region_caps_how_far_pi_moves_from_the_sizes() -> None:
    shares = _t(0.5, 0.5)
    # π = (0.8, 0.2): KL = 0.8 ln 1.6 + 0.2 ln 0.4 = 0.1927; a near-zero τ would give (1, 0).
    kl = 0.8 * math.log(1.6) + 0.2 * math.log(0.4)
    probs = credit_probabilities(shares, _t(1, 0), 1e-3, floor=0.0, max_kl=kl)
    assert probs.tolist() == pytest.approx([0.8, 0.2], abs=1e-9)
    assert kl_from_shares(probs, shares) == pytest.approx(kl)
    # Inside the region τ alone decides: exp(ln 3) = 3 gives (0.75, 0.25), KL 0.13 < 0.1927.
    inside = credit_probabilities(shares, _t(0.01 * math.log(3), 0), 0.01, 0.0, max_kl=kl)
    assert inside.tolist() == pytest.approx([0.75, 0.25])
    with pytest.raises(ValueError, match="max_kl"):
        credit_probabilities(shares, _t(0, 0), 0.01, 0.0, max_kl=0.0)


# ----------------------------------------------------------------- the mode
Q, V, K = 12, 6, 4
SEEDS = TaskSeeds.derive(seed=1, offset=0)
SETTINGS = ModeSettings(num_groups=K, kmeans_iters=10, kmeans_inits=2, floor=0.1)


def _s() -> torch.Tensor:
    return 0.8 + 0.4 * torch.rand(Q, V, generator=torch.Generator().manual_seed(0))


def _episodes(mode: CreditMode, effect: torch.Tensor, episodes: int) -> list[float]:
    """Episodes in which a permutation's error drops by ``effect[group rank]`` per unit of its
    relative draws; returns π(hardest group) at every opening."""
    errors = torch.full((Q,), 0.5, dtype=D)
    hard_mass = []
    for _ in range(episodes):
        mode.on_validation(errors)
        grouped = mode.act(_s(), opening=True)
        hard_mass.append(float(grouped.probs[0]))
        draws = mode.sampler.draw(48, "cpu")
        mode.on_episode_draws(draws)
        x = relative_draws(draws, Q)
        errors = errors - effect[grouped.groups.labels] * x
        mode.on_validation(errors)
        mode.update(grouped.groups.state, reward=0.0)
    return hard_mass


def _mode(**credit: float) -> CreditMode:
    settings = ModeSettings(**{**SETTINGS.__dict__, "credit": credit})
    mode = make_mode("credit", settings, Q, SEEDS)
    assert isinstance(mode, CreditMode)
    return mode


def test_the_mode_learns_which_group_its_draws_help() -> None:
    mode = _mode(temperature=0.001, memory=1.0, max_kl=5.0)
    shares = mode.act(_s(), opening=False).probs  # no credit yet: the group sizes
    start = _episodes(mode, _t(0.002, 0, 0, 0), episodes=1)[0]
    assert start == pytest.approx(float(shares[0]))
    later = _episodes(mode, _t(0.01, 0, 0, 0), episodes=8)
    assert later[-1] > 0.8 > 0.5 > start  # the hardest group's own draws help: π moves to it


def test_changes_shared_by_a_group_earn_no_credit() -> None:
    """Errors that fall with the group (its room to improve, its regression to the mean), not
    with each member's own draws, leave π at the group sizes."""
    mode = _mode(temperature=0.001)
    errors = torch.full((Q,), 0.5, dtype=D)
    for _ in range(5):
        mode.on_validation(errors)
        grouped = mode.act(_s(), opening=True)
        sizes = grouped.groups.counts.double() / Q
        assert grouped.probs.tolist() == pytest.approx(sizes.tolist())
        mode.on_episode_draws(mode.sampler.draw(48, "cpu"))
        errors = errors - _t(0.05, 0.02, 0.01, 0.0)[grouped.groups.labels]
        mode.on_validation(errors)
        mode.update(grouped.groups.state, reward=0.0)


def test_replay_reproduces_pi_and_the_noise_test_runs() -> None:
    mode = _mode(temperature=0.001, memory=0.9, max_kl=0.1)
    real = _episodes(mode, _t(0.002, 0, 0, 0), episodes=6)
    drops = [record["y"] for record in mode.records]
    hard = hard_groups(K)
    replayed = replay_hard_mass(mode.records, drops, hard, mode.credit, floor=0.1)
    opened = [float(sum(p[h] for h in hard)) for p in _opened_probs(mode)]
    assert replayed.tolist() == pytest.approx(opened)
    assert replayed[0].item() == pytest.approx(float(mode.records[0]["shares"][hard].sum()))
    assert real[0] == pytest.approx(float(mode.records[0]["shares"][0]))
    result = mode.replay_noise_test(hard, shuffles=9, seed=0)
    assert result is not None and 0.1 <= result.p_value <= 1.0
    assert result.hard_mass == pytest.approx(replayed.tolist())
    assert mode.replay_noise_test(hard, shuffles=0, seed=0) is None


def _opened_probs(mode: CreditMode) -> list[torch.Tensor]:
    """π at each episode's opening, recomputed from the records in order."""
    stats, probs = empty_stats(K), []
    for record in mode.records:
        probs.append(
            credit_probabilities(
                record["shares"],
                shrunk_values(stats),
                mode.credit.temperature,
                floor=0.1,
                max_kl=mode.credit.max_kl,
            )
        )
        stats = accumulate(stats, episode_stats(record["labels"], record["x"], record["y"], K), 0.9)
    return probs


def test_unknown_credit_settings_are_named() -> None:
    with pytest.raises(ValueError, match=r"policy\.credit accepts temperature, max_kl and memory"):
        _mode(tau=0.1)
    with pytest.raises(ValueError, match="temperature"):
        CreditSettings(temperature=0.0)


def test_closing_without_draws_is_an_error() -> None:
    mode = _mode()
    mode.on_validation(torch.rand(Q))
    grouped = mode.act(_s(), opening=True)
    with pytest.raises(RuntimeError, match="without its opening, draws or validation"):
        mode.update(grouped.groups.state, reward=0.0)
