"""k-means against scikit-learn, determinism, empty clusters, and the grouping built on it."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from ssl_rl.policy import group_medians, group_permutations, kmeans
from ssl_rl.policy.kmeans import _lloyd


def _data(kind: str, seed: int) -> np.ndarray:
    if kind == "blobs":
        x, _ = make_blobs(n_samples=400, n_features=10, centers=10, random_state=seed)
    else:
        x = np.random.default_rng(seed).random((400, 10))
    return x.astype(np.float32)


@pytest.mark.parametrize("kind", ["blobs", "uniform"])
@pytest.mark.parametrize("seed", [0, 1])
def test_inertia_close_to_scikit_learn(kind, seed):
    x = _data(kind, seed)
    reference = KMeans(10, init="k-means++", n_init=4, random_state=seed).fit(x).inertia_
    result = kmeans(
        torch.from_numpy(x), 10, generator=torch.Generator().manual_seed(seed), n_init=4
    )
    assert result.inertia <= 1.03 * reference
    # The reported inertia, centres and labels agree with each other.
    points = torch.from_numpy(x)
    assert result.inertia == pytest.approx(
        (points - result.centers[result.labels]).pow(2).sum().item(), rel=1e-4
    )
    for cluster in range(10):
        members = points[result.labels == cluster]
        torch.testing.assert_close(result.centers[cluster], members.mean(dim=0))


def _near_constant_state(rows: int, seed: int, planted: bool) -> tuple[np.ndarray, np.ndarray]:
    """An early-training state: ratios within ~1e-4 of 1 (float32), 10 planted row groups.

    Without planted groups every row is the same constant plus noise.
    """
    rng = np.random.default_rng(seed)
    groups = np.arange(rows) % 10
    centres = 1.0 + (1e-4 if planted else 0.0) * rng.standard_normal((10, 100))
    x = centres[groups] + 3e-5 * rng.standard_normal((rows, 100))
    return x.astype(np.float32), groups


@pytest.mark.parametrize("rows", [100, 1000])
@pytest.mark.parametrize("seed", [0, 1])
def test_near_constant_state_groups_like_scikit_learn(rows, seed):
    # Row distances (~1e-6) lie below float32's rounding of ||x||^2 (~1e-5 at ||x||^2 = 100).
    x, planted = _near_constant_state(rows, seed, planted=True)
    reference = KMeans(10, init="k-means++", n_init=10, random_state=seed).fit(x)
    result = kmeans(torch.from_numpy(x), 10, generator=torch.Generator().manual_seed(seed))
    assert result.inertia == pytest.approx(reference.inertia_, rel=0.05)
    assert adjusted_rand_score(planted, result.labels.numpy()) >= 0.9
    assert result.centers.dtype == torch.float32
    points = torch.from_numpy(x).double()
    for cluster in range(10):
        members = points[result.labels == cluster]
        torch.testing.assert_close(
            result.centers[cluster].double(), members.mean(dim=0), rtol=0, atol=1e-7
        )


def test_near_constant_state_without_groups_matches_scikit_learn_inertia():
    x, _ = _near_constant_state(200, 2, planted=False)
    reference = KMeans(10, init="k-means++", n_init=10, random_state=2).fit(x).inertia_
    result = kmeans(torch.from_numpy(x), 10, generator=torch.Generator().manual_seed(2))
    assert result.inertia == pytest.approx(reference, rel=0.05)


def test_group_permutations_on_a_near_constant_state_finds_the_planted_groups():
    x, planted = _near_constant_state(100, 3, planted=True)
    groups = group_permutations(
        torch.from_numpy(x), k=10, generator=torch.Generator().manual_seed(0)
    )
    assert adjusted_rand_score(planted, groups.labels.numpy()) >= 0.9
    assert groups.counts.tolist() == [10] * 10


def test_same_seed_same_result():
    x = torch.from_numpy(_data("uniform", 3))
    first = kmeans(x, 10, generator=torch.Generator().manual_seed(7), n_init=2)
    second = kmeans(x, 10, generator=torch.Generator().manual_seed(7), n_init=2)
    assert torch.equal(first.labels, second.labels)
    assert torch.equal(first.centers, second.centers)
    assert first.inertia == second.inertia


def test_global_generator_is_used_without_a_generator():
    x = torch.from_numpy(_data("uniform", 4))
    torch.manual_seed(11)
    first = kmeans(x, 8)
    torch.manual_seed(11)
    second = kmeans(x, 8)
    assert torch.equal(first.labels, second.labels)


def test_empty_cluster_is_reseeded_with_a_far_point():
    generator = torch.Generator().manual_seed(0)
    x = 100.0 + torch.randn(60, 3, generator=generator)  # far from the origin as well
    centers = x[:4].clone()
    centers[2] = -1e3  # no point is ever nearest to this centre
    result = _lloyd(x, centers, n_iter=50, tol_scaled=0.0)
    assert torch.bincount(result.labels, minlength=4).min().item() >= 1
    assert (result.centers[2] - 100.0).abs().max().item() < 10.0


def test_n_equal_k_gives_one_point_per_cluster():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    result = kmeans(x, 6, generator=torch.Generator().manual_seed(0))
    assert sorted(result.labels.tolist()) == list(range(6))
    assert result.inertia == pytest.approx(0.0, abs=1e-8)


def test_duplicate_points_still_fill_every_cluster():
    # 3 distinct points repeated: fewer distinct values than clusters.
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]).repeat(4, 1)
    result = kmeans(x, 5, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(result.labels, minlength=5).min().item() >= 1
    assert result.inertia == pytest.approx(0.0, abs=1e-8)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="k <= N"):
        kmeans(torch.zeros(3, 2), 4)
    with pytest.raises(ValueError, match="NaN"):
        kmeans(torch.tensor([[0.0], [float("nan")]]), 1)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        kmeans(torch.zeros(5), 2)


def _three_difficulty_levels() -> torch.Tensor:
    """30 permutations x 20 samples: rows 0-9 easy (ratios ~1.8), 10-19 medium, 20-29 hard."""
    generator = torch.Generator().manual_seed(5)
    level = torch.tensor([1.8, 1.1, 0.6]).repeat_interleave(10)
    return level[:, None] + 0.05 * torch.randn(30, 20, generator=generator)


def test_group_permutations_sorted_by_difficulty():
    s = _three_difficulty_levels()
    groups = group_permutations(s, k=3, generator=torch.Generator().manual_seed(0))
    assert groups.labels[20:].unique().tolist() == [0]  # hardest rows -> group 0
    assert groups.labels[10:20].unique().tolist() == [1]
    assert groups.labels[:10].unique().tolist() == [2]
    assert groups.counts.tolist() == [10, 10, 10]
    assert groups.state.shape == (3, 2)
    torch.testing.assert_close(groups.state[:, 0], torch.full((3,), 1 / 3))
    assert groups.state[:, 1].tolist() == sorted(groups.state[:, 1].tolist())
    _, medians = group_medians(s, groups.labels, 3)
    torch.testing.assert_close(groups.state[:, 1], medians)


def test_group_order_is_stable_across_kmeans_seeds():
    s = _three_difficulty_levels()
    labels = [
        group_permutations(s, k=3, generator=torch.Generator().manual_seed(seed)).labels
        for seed in range(4)
    ]
    for other in labels[1:]:
        assert torch.equal(labels[0], other)


def test_group_permutations_needs_enough_permutations():
    with pytest.raises(ValueError, match="10 groups"):
        group_permutations(torch.ones(5, 3), k=10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_runs_on_the_input_device():
    s = _three_difficulty_levels().cuda()
    groups = group_permutations(s, k=3, generator=torch.Generator().manual_seed(0))
    assert groups.labels.device.type == "cuda" and groups.state.device.type == "cuda"
