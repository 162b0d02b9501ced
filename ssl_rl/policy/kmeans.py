"""k-means in torch on the input's device: greedy k-means++ seeding, Lloyd iterations.

Used to group the rows of the state s (one row per permutation) into |C| groups. Randomness
comes only from the given ``torch.Generator`` (or torch's global CPU generator when None), so
a seeded call is deterministic. Empty clusters are re-seeded with the points farthest from
their centres, taken from clusters that keep at least one point, so with N >= k points every
cluster ends non-empty (also when points are duplicated).

Precision: early in training every ratio of s lies within ~1e-3 of 1, so the distances between
rows are far below float32's rounding of ||x||^2 and ||x||^2 - 2x.c + ||c||^2 on the raw rows is
noise. The points are therefore centred (column mean subtracted, as scikit-learn does) and
clustered in float64 (float32 only where the device has no float64, e.g. MPS).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


class KMeansResult(NamedTuple):
    labels: Tensor  # (N,) long, cluster index of each point
    centers: Tensor  # (k, D), mean of each cluster's points
    inertia: float  # sum of squared distances of the points to their centres
    n_iter: int  # Lloyd iterations of the best run


def kmeans(
    x: Tensor,
    k: int,
    n_iter: int = 100,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
    n_init: int = 10,
) -> KMeansResult:
    """Cluster the rows of ``x`` (N, D) into ``k`` clusters; best of ``n_init`` seeded runs.

    ``tol`` is relative, as in scikit-learn: iterations stop once the summed squared centre
    shift falls below ``tol`` times the mean per-feature variance of ``x``.
    """
    if x.ndim != 2:
        raise ValueError(f"kmeans expects x of shape (N, D), got {tuple(x.shape)}")
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"kmeans needs 1 <= k <= N points, got k={k} for N={x.shape[0]}")
    if n_init < 1 or n_iter < 1:
        raise ValueError(f"n_init and n_iter must be >= 1, got {n_init} and {n_iter}")
    if not torch.isfinite(x).all():
        raise ValueError("kmeans input contains NaN or inf")
    out_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    points = x.to(_work_dtype(x.device))
    mean = points.mean(dim=0)
    points = points - mean
    tol_scaled = tol * points.var(dim=0, unbiased=False).mean().item()
    best: KMeansResult | None = None
    for _ in range(n_init):
        centers = _kmeans_plus_plus(points, k, generator)
        result = _lloyd(points, centers, n_iter, tol_scaled)
        if best is None or result.inertia < best.inertia:
            best = result
    assert best is not None
    return best._replace(centers=(best.centers + mean).to(out_dtype))


def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def squared_distances(x: Tensor, centers: Tensor) -> Tensor:
    """(N, k) squared Euclidean distances, clamped at 0 against rounding."""
    d2 = (
        (x * x).sum(dim=1, keepdim=True)
        - 2.0 * x @ centers.T
        + (centers * centers).sum(dim=1)[None, :]
    )
    return d2.clamp_min_(0.0)


def _uniform(n: int, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(n, generator=generator, device=device, dtype=torch.float64)


def _kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """Greedy k-means++ (as in scikit-learn): of 2 + log k D²-sampled candidates, keep the best."""
    n = x.shape[0]
    n_trials = 2 + int(math.log(k))
    first = int(_uniform(1, generator).item() * n) % n
    centers = [x[first]]
    chosen = torch.zeros(n, dtype=torch.bool, device=x.device)
    chosen[first] = True
    closest = squared_distances(x, x[first : first + 1]).squeeze(1).double()
    for _ in range(1, k):
        potential = closest.sum().item()
        if potential <= 0.0:
            # Fewer distinct points than clusters so far: pick an unused index uniformly.
            candidates = (~chosen).nonzero().squeeze(1)
            pick = int(_uniform(1, generator).item() * candidates.numel()) % candidates.numel()
            best = int(candidates[pick].item())
        else:
            thresholds = _uniform(n_trials, generator).to(x.device) * potential
            cumulative = closest.cumsum(0)
            # right=True never lands on a zero-weight point (an existing centre).
            ids = torch.searchsorted(cumulative, thresholds, right=True)
            ids = ids.clamp_max_(int(closest.nonzero().max().item()))
            trial_d2 = squared_distances(x, x[ids]).T.double()
            trial_closest = torch.minimum(closest[None, :], trial_d2)
            best_trial = int(trial_closest.sum(dim=1).argmin().item())
            best = int(ids[best_trial].item())
        chosen[best] = True
        centers.append(x[best])
        new_d2 = squared_distances(x, x[best : best + 1]).squeeze(1).double()
        closest = torch.minimum(closest, new_d2)
    return torch.stack(centers)


def _lloyd(x: Tensor, centers: Tensor, n_iter: int, tol_scaled: float) -> KMeansResult:
    k = centers.shape[0]
    iterations = 0
    while iterations < n_iter:
        iterations += 1
        new_centers = _means(x, _assign(x, centers), k)
        shift = (new_centers - centers).pow(2).sum().item()
        centers = new_centers
        if shift <= tol_scaled:
            break
    labels = _assign(x, centers)
    centers = _means(x, labels, k)
    inertia = (x - centers[labels]).pow(2).sum().item()
    return KMeansResult(labels=labels, centers=centers, inertia=inertia, n_iter=iterations)


def _assign(x: Tensor, centers: Tensor) -> Tensor:
    """Nearest centre per point, then empty clusters re-seeded so all k are used."""
    d2 = squared_distances(x, centers)
    labels = d2.argmin(dim=1)
    counts = torch.bincount(labels, minlength=centers.shape[0])
    if bool((counts == 0).any()):
        labels = _reseed_empty(labels, d2.gather(1, labels[:, None]).squeeze(1), counts)
    return labels


def _reseed_empty(labels: Tensor, own_d2: Tensor, counts: Tensor) -> Tensor:
    """Move the points farthest from their centres into the empty clusters.

    A point is only taken from a cluster that keeps at least one other point, so no new empty
    cluster appears. Rare path: done on the CPU with plain loops.
    """
    labels_cpu = labels.cpu().clone()
    counts_cpu = counts.cpu().clone()
    order = torch.argsort(own_d2.cpu(), descending=True, stable=True).tolist()
    empty = (counts_cpu == 0).nonzero().squeeze(1).tolist()
    cursor = 0
    for cluster in empty:
        while counts_cpu[labels_cpu[order[cursor]]] <= 1:
            cursor += 1
        point = order[cursor]
        counts_cpu[labels_cpu[point]] -= 1
        labels_cpu[point] = cluster
        counts_cpu[cluster] = 1
        cursor += 1
    return labels_cpu.to(labels.device)


def _means(x: Tensor, labels: Tensor, k: int) -> Tensor:
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device)
    sums.index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=k).clamp_min(1).to(x.dtype)
    return sums / counts[:, None]
