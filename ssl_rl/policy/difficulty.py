"""Difficulty bins: of groups (by rank) and of permutations (by validation error quantile).

Fig. 4 of the paper bins what the policy chose "by validation error into four groups". Two
views are kept: the policy's own *groups* (0 = hardest), merged into ``bins`` runs of
consecutive groups, and the drawn *permutations* binned by their own validation error into
quantiles of equal size. The group view moves with the group sizes alone (small hard groups
drawn in proportion to their size are a small share); the quantile view does not: a sampler
uniform over permutations lands 1 / bins of its draws in every quantile.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor

FIG4_BINS = 4


def bin_groups(k: int, bins: int) -> list[range]:
    """Split groups 0..k-1 into ``bins`` runs of consecutive groups.

    Every bin gets ``k // bins`` groups; the ``k % bins`` extra groups go to the outermost bins
    first (hardest, easiest, second hardest, ...), so the split is symmetric and the "hard" and
    "easy" bins are equally wide: k=10, bins=4 gives {0,1,2}, {3,4}, {5,6}, {7,8,9}.
    """
    if k < 1:
        raise ValueError(f"need at least one group, got k={k}")
    if not 1 <= bins <= k:
        raise ValueError(f"bins must be in [1, k={k}], got {bins}")
    sizes = [k // bins] * bins
    outside_in = [i // 2 if i % 2 == 0 else bins - 1 - i // 2 for i in range(bins)]
    for index in outside_in[: k % bins]:
        sizes[index] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return [range(int(a), int(b)) for a, b in itertools.pairwise(starts)]


def hard_groups(k: int, bins: int = FIG4_BINS) -> list[int]:
    """The groups of the hardest bin (Fig. 4's top, red)."""
    return list(bin_groups(k, bins)[0])


def error_quantile_bins(errors: Tensor, tiebreak: Tensor | None = None, bins: int = 4) -> Tensor:
    """Quantile bin of every permutation by validation error, 0 = hardest.

    ``errors`` (|Ψ|,) are per-permutation validation errors; many tie (they are multiples of
    1 / |X_val|), so ties are broken by ``tiebreak`` (e.g. the mean ratio of the row of s:
    lower = harder), then by index. Bins hold ⌊|Ψ| / bins⌋ or one more permutations.
    """
    if errors.ndim != 1 or errors.numel() < bins:
        raise ValueError(f"need a 1-D error per permutation (>= {bins}), got {tuple(errors.shape)}")
    keys = [-errors.double().cpu().numpy()]
    if tiebreak is not None:
        if tiebreak.shape != errors.shape:
            raise ValueError("tiebreak must have one value per permutation")
        keys.insert(0, tiebreak.double().cpu().numpy())
    order = np.lexsort(keys)  # last key is primary: highest error first
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return torch.from_numpy(ranks * bins // len(order))


def bin_shares(members: Tensor, bin_of: Tensor, bins: int) -> list[float]:
    """Share of ``members`` (indices into ``bin_of``) falling in each bin; zeros if none."""
    if members.numel() == 0:
        return [0.0] * bins
    counts = torch.bincount(bin_of[members.cpu()], minlength=bins).double()
    return (counts / counts.sum()).tolist()
