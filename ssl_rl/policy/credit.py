"""Credit per group from its own permutations' changes: pure tensor functions.

An episode draws every training sample's permutation from π: a group, then a uniform member.
So within one group, how often each permutation was drawn is a randomised experiment: the
draws do not depend on anything the network did. The validations at the episode's start and
end measure every permutation's error, so regressing a permutation's error drop on its own
draws, *within its group and episode*, estimates what one more share of training does for a
permutation of that group (its own effect). Centring within (episode, group) removes everything
the group's members share: the trunk's general progress, the group's room to improve and the
regression to the mean of a group formed from the same validation [decision].

Per group rank j (0 = hardest, as ``ssl_rl.policy.groups`` sorts them):

    y_i = e_i(t) − e_i(t+1),   x_i = n_i · |Ψ| / N   (draws relative to uniform sampling)
    β_j = Σ w (x − x̄)(y − ȳ) / Σ w (x − x̄)²   (means per episode and group, weights w
                                                decaying by ``memory`` per episode)

With x in units of the uniform share, E's expected drop is const + Σ_j π_j β_j, so the π
that maximises it against τ · KL(π ‖ group sizes) is π_j ∝ |c_j| · exp(β_j / τ) [decision]:
the neutral start (β = 0: every permutation equally likely) and the pull back to it of the
REINFORCE learner's permutation entropy. β_j enters after shrinking its difference from the
pooled slope by its standard error (positive-part James–Stein): differences the data cannot
tell from noise leave π at its sizes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


class CreditStats(NamedTuple):
    """Decayed within-(episode, group) sums per group rank, each (|C|,) float64."""

    points: Tensor  # Σ w over permutations
    cells: Tensor  # Σ w over (episode, group) cells, each costing a degree of freedom
    sxx: Tensor  # Σ w (x − x̄)²
    sxy: Tensor  # Σ w (x − x̄)(y − ȳ)
    syy: Tensor  # Σ w (y − ȳ)²


def empty_stats(k: int) -> CreditStats:
    """No episode seen: every sum 0."""
    zeros = torch.zeros(k, dtype=torch.float64)
    return CreditStats(*(zeros.clone() for _ in CreditStats._fields))


def relative_draws(draws: Tensor, num_perms: int) -> Tensor:
    """x_i = n_i · |Ψ| / N from the episode's drawn permutation indices, (|Ψ|,) float64."""
    if draws.ndim != 1 or draws.numel() == 0:
        raise ValueError(f"need the episode's drawn permutations (1-D), got {tuple(draws.shape)}")
    counts = torch.bincount(draws.cpu().long(), minlength=num_perms).double()
    return counts * num_perms / draws.numel()


def episode_stats(labels: Tensor, x: Tensor, y: Tensor, k: int) -> CreditStats:
    """One episode's sums: x and y centred within each group of ``labels`` (|Ψ|,)."""
    if not labels.shape == x.shape == y.shape or labels.ndim != 1:
        raise ValueError(
            f"labels, x and y need one value per permutation, got {tuple(labels.shape)}, "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    labels = labels.cpu().long()
    x, y = x.cpu().double(), y.cpu().double()
    points = torch.bincount(labels, minlength=k).double()
    size = points.clamp_min(1.0)
    dx = x - (torch.zeros(k, dtype=torch.float64).index_add(0, labels, x) / size)[labels]
    dy = y - (torch.zeros(k, dtype=torch.float64).index_add(0, labels, y) / size)[labels]

    def per_group(values: Tensor) -> Tensor:
        return torch.zeros(k, dtype=torch.float64).index_add(0, labels, values)

    return CreditStats(
        points=points,
        cells=(points > 0).double(),
        sxx=per_group(dx * dx),
        sxy=per_group(dx * dy),
        syy=per_group(dy * dy),
    )


def accumulate(stats: CreditStats, new: CreditStats, memory: float) -> CreditStats:
    """The old sums decayed by ``memory`` (in [0, 1]) plus the new episode's."""
    if not 0.0 <= memory <= 1.0:
        raise ValueError(f"credit memory must be in [0, 1], got {memory}")
    return CreditStats(*(memory * old + add for old, add in zip(stats, new, strict=True)))


def slopes(stats: CreditStats) -> tuple[Tensor, Tensor]:
    """β_j and its standard error per group rank; 0 and inf where x never varied."""
    varied = stats.sxx > 1e-12
    sxx = torch.where(varied, stats.sxx, torch.ones_like(stats.sxx))
    beta = torch.where(varied, stats.sxy / sxx, torch.zeros_like(sxx))
    dof = stats.points - stats.cells - 1.0
    residual = (stats.syy - beta * stats.sxy).clamp_min(0.0) / dof.clamp_min(1.0)
    se = torch.where(varied & (dof > 0), (residual / sxx).sqrt(), torch.full_like(sxx, torch.inf))
    return beta, se


def shrunk_values(stats: CreditStats) -> Tensor:
    """β_j, its difference from the pooled slope shrunk by its standard error, (|C|,).

    Positive-part James–Stein per group: d · max(0, 1 − se² / d²), d = β_j − β_pooled.
    Ranks without evidence (no variation in their draws) get the pooled slope.
    """
    beta, se = slopes(stats)
    total_sxx = float(stats.sxx.sum())
    pooled = float(stats.sxy.sum()) / total_sxx if total_sxx > 1e-12 else 0.0
    difference = beta - pooled
    keep = (1.0 - se.square() / difference.square().clamp_min(1e-300)).clamp_min(0.0)
    keep = torch.where(torch.isfinite(se), keep, torch.zeros_like(keep))
    return pooled + difference * keep


def tilted(shares: Tensor, values: Tensor, temperature: float) -> Tensor:
    """shares_j · exp(values_j / τ), normalised (float64); empty groups get 0."""
    logits = torch.log(shares.double()) + values.double() / temperature  # log 0 = -inf
    return logits.softmax(dim=0)


def kl_from_shares(probs: Tensor, shares: Tensor) -> float:
    """KL(π ‖ shares) in nats, over the groups π draws."""
    drawn = probs > 0
    return float((probs[drawn] * (probs[drawn] / shares.double()[drawn]).log()).sum())


def credit_probabilities(
    shares: Tensor,
    values: Tensor,
    temperature: float,
    floor: float,
    max_kl: float | None = None,
) -> Tensor:
    """π_j ∝ shares_j · exp(values_j / τ), mixed with the shares: (1 − floor) π + floor · shares.

    ``shares`` are the groups' fractions of Ψ (empty groups 0 and never drawn). ``max_kl``: a
    trust region [decision]; where τ would take π further than ``max_kl`` nats from the
    shares, τ grows until KL(π ‖ shares) = ``max_kl`` (bisection on log τ; KL falls as τ
    grows). The values extrapolate a marginal effect linearly, so they must not move π far.
    """
    if temperature <= 0.0:
        raise ValueError(f"credit temperature must be > 0, got {temperature}")
    if max_kl is not None and max_kl <= 0.0:
        raise ValueError(f"credit max_kl must be > 0, got {max_kl}")
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"policy floor must be in [0, 1), got {floor}")
    if shares.shape != values.shape or shares.ndim != 1:
        raise ValueError(
            f"shares and values need one entry per group, got {tuple(shares.shape)} "
            f"and {tuple(values.shape)}"
        )
    shares = shares.double()
    probs = tilted(shares, values, temperature)
    if max_kl is not None and kl_from_shares(probs, shares) > max_kl:
        low, high = math.log(temperature), math.log(temperature) + 1.0
        while kl_from_shares(tilted(shares, values, math.exp(high)), shares) > max_kl:
            low, high = high, high + 1.0
        for _ in range(50):
            middle = 0.5 * (low + high)
            if kl_from_shares(tilted(shares, values, math.exp(middle)), shares) > max_kl:
                low = middle
            else:
                high = middle
        probs = tilted(shares, values, math.exp(high))
    return (1.0 - floor) * probs + floor * shares
