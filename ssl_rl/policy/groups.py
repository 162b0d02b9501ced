"""The action space: permutations grouped by k-means on the rows of s, and the group state ŝ.

Group order [decision]: k-means labels are arbitrary, so groups are relabelled by their median
ratio, ascending: group 0 holds the hardest permutations (lowest median ratio) and group k-1
the easiest. Empty groups go last (after the easiest) with median 0. Group j therefore means
the same difficulty rank at every episode, which keeps the policy's inputs and outputs
meaningful over time.

The median is the usual one (mean of the two middle values for an even count), taken over all
ratio entries s[i, v] of the rows i in the group (Eq. 10).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ssl_rl.policy.kmeans import kmeans


class GroupAssignment(NamedTuple):
    labels: Tensor  # (Q,) long: group of each permutation, 0 = hardest
    state: Tensor  # (k, 2): ŝ = [count (or fraction), median ratio] per group
    counts: Tensor  # (k,) long: raw group sizes |c_j|
    inertia: float  # k-means inertia of the grouping


def group_medians(s: Tensor, labels: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Per group: the number of permutations (long) and the median ratio (0 when empty)."""
    _check(s, labels, k)
    counts = torch.bincount(labels, minlength=k)
    values = s if s.dtype in (torch.float32, torch.float64) else s.float()
    medians = torch.zeros(k, dtype=values.dtype, device=s.device)
    for group in counts.nonzero().squeeze(1).tolist():
        medians[group] = torch.quantile(values[labels == group].flatten(), 0.5)
    return counts, medians


def sort_groups_by_median(s: Tensor, labels: Tensor, k: int) -> Tensor:
    """Relabel groups by ascending median ratio (0 = hardest); empty groups last."""
    counts, medians = group_medians(s, labels, k)
    key = torch.where(counts > 0, medians, torch.full_like(medians, float("inf")))
    old_of_new = torch.argsort(key, stable=True)
    new_of_old = torch.empty_like(old_of_new)
    new_of_old[old_of_new] = torch.arange(k, device=old_of_new.device)
    return new_of_old[labels]


def group_state(s: Tensor, labels: Tensor, k: int, normalize_counts: bool = True) -> Tensor:
    """ŝ (Eq. 10) of shape (k, 2): [|c_j|, median(s_i : ψ_i ∈ c_j)] per group j.

    With ``normalize_counts`` the size enters as the fraction |c_j| / |Ψ| [decision]: the same
    information for a fixed Ψ, but the policy input stays in [0, 1] whatever |Ψ| is (the raw
    paper definition puts values up to 1000 next to medians in [0.5, 2]).
    """
    counts, medians = group_medians(s, labels, k)
    return _stack_state(counts, medians, s.shape[0], normalize_counts)


def group_permutations(
    s: Tensor,
    k: int = 10,
    generator: torch.Generator | None = None,
    n_iter: int = 100,
    n_init: int = 10,
    normalize_counts: bool = True,
) -> GroupAssignment:
    """k-means on the rows of s, groups sorted by difficulty, and the policy input ŝ."""
    if s.ndim != 2:
        raise ValueError(f"state s must be 2-D (|Ψ|, |X_val|), got shape {tuple(s.shape)}")
    if s.shape[0] < k:
        raise ValueError(f"cannot form {k} groups from |Ψ| = {s.shape[0]} permutations")
    clusters = kmeans(s, k, n_iter=n_iter, generator=generator, n_init=n_init)
    labels = sort_groups_by_median(s, clusters.labels, k)
    counts, medians = group_medians(s, labels, k)
    return GroupAssignment(
        labels=labels,
        state=_stack_state(counts, medians, s.shape[0], normalize_counts),
        counts=counts,
        inertia=clusters.inertia,
    )


def _stack_state(counts: Tensor, medians: Tensor, num_perms: int, normalize: bool) -> Tensor:
    sizes = counts.to(medians.dtype)
    if normalize:
        sizes = sizes / num_perms
    return torch.stack([sizes, medians], dim=1)


def _check(s: Tensor, labels: Tensor, k: int) -> None:
    if s.ndim != 2:
        raise ValueError(f"state s must be 2-D (|Ψ|, |X_val|), got shape {tuple(s.shape)}")
    if labels.shape != s.shape[:1] or labels.dtype != torch.long:
        raise ValueError(
            f"labels must be a long tensor of shape ({s.shape[0]},), one group per row of s; "
            f"got {labels.dtype} of shape {tuple(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"labels must lie in [0, {k}), got [{labels.min()}, {labels.max()}]")
