"""Nearest-neighbour retrieval: hand-computed example, tie rule, chunk invariance, no Q×G matrix."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors
from torch.profiler import ProfilerActivity, profile

from ssl_rl.eval.retrieval import knn_hits, knn_topk_accuracy, nearest_neighbours

CHUNKS = [(1, 1), (2, 3), (3, 2), (1024, 8192)]


def _hand_example():
    # Gallery: g0=(1,0) class 0, g1=(0,1) class 1, g2=(1,1) class 1, g3=(-1,0) class 2,
    # g4=(2,0) class 2 (same direction as g0: an exact tie with it).
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [2.0, 0.0]])
    gallery_labels = torch.tensor([0, 1, 1, 2, 2])
    # Cosine similarities, order (ties → lower gallery index), neighbour classes:
    # q0=(1,0) class 2: g0 1, g4 1, g2 .707, g1 0, g3 -1   → classes 0,2,1,1,2: first hit rank 2
    # q1=(0,3) class 1: g1 1, g2 .707, g0 0, g3 0, g4 0    → classes 1,...:      first hit rank 1
    # q2=(-1,1) class 0: g1 .707, g3 .707, g2 0, g0 -.707, g4 -.707
    #                                                      → classes 1,2,1,0,2: first hit rank 4
    queries = torch.tensor([[1.0, 0.0], [0.0, 3.0], [-1.0, 1.0]])
    query_labels = torch.tensor([2, 1, 0])
    return queries, query_labels, gallery, gallery_labels


@pytest.mark.parametrize(("query_chunk", "gallery_chunk"), CHUNKS)
def test_hand_computed_example(query_chunk, gallery_chunk):
    queries, query_labels, gallery, gallery_labels = _hand_example()
    chunks = {"query_chunk": query_chunk, "gallery_chunk": gallery_chunk}
    values, indices = nearest_neighbours(queries, gallery, 5, **chunks)
    assert indices.tolist() == [[0, 4, 2, 1, 3], [1, 2, 0, 3, 4], [1, 3, 2, 0, 4]]
    half = 0.5**0.5
    expected = [[1, 1, half, 0, -1], [1, half, 0, 0, 0], [half, half, 0, -half, -half]]
    torch.testing.assert_close(values, torch.tensor(expected), atol=1e-6, rtol=0)

    hits = knn_hits(queries, query_labels, gallery, gallery_labels, ks=(1, 2, 4), **chunks)
    assert hits.tolist() == [[False, True, True], [True, True, True], [False, False, True]]
    accuracy = knn_topk_accuracy(
        queries, query_labels, gallery, gallery_labels, (1, 2, 4), **chunks
    )
    # k=1: only q1 → 1/3; k=2: q0, q1 → 2/3; k=4: all → 1.
    assert accuracy == pytest.approx({1: 1 / 3, 2: 2 / 3, 4: 1.0})


def _binary_features(rows: int, generator: torch.Generator) -> torch.Tensor:
    # Exactly 4 ones in 16 dims: the norm is exactly 2, so every cosine similarity is a multiple
    # of 1/4 computed exactly in any summation order — many exact ties, no rounding noise.
    ranks = torch.rand(rows, 16, generator=generator).argsort(dim=1)
    return (ranks < 4).float()


def _reference_order(queries: torch.Tensor, gallery: torch.Tensor, k: int) -> np.ndarray:
    similarity = (queries / 2) @ (gallery / 2).T
    gallery_index = np.broadcast_to(np.arange(gallery.shape[0]), similarity.shape)
    # lexsort: last key is primary → similarity descending, then gallery index ascending.
    order = np.lexsort((gallery_index, -similarity.numpy()), axis=1)
    return order[:, :k]


def test_ties_across_chunk_boundaries_are_chunk_size_invariant():
    generator = torch.Generator().manual_seed(0)
    queries, gallery = _binary_features(37, generator), _binary_features(211, generator)
    k = 25
    expected = _reference_order(queries, gallery, k)
    for query_chunk, gallery_chunk in [(1, 1), (5, 7), (4, 25), (16, 26), (37, 211), (64, 1000)]:
        _, indices = nearest_neighbours(
            queries, gallery, k, query_chunk=query_chunk, gallery_chunk=gallery_chunk
        )
        np.testing.assert_array_equal(indices.numpy(), expected)


def test_half_precision_features_give_the_same_neighbours():
    generator = torch.Generator().manual_seed(1)
    queries, gallery = _binary_features(20, generator), _binary_features(90, generator)
    expected = _reference_order(queries, gallery, 10)
    for dtype in (torch.float16, torch.bfloat16):
        values, indices = nearest_neighbours(
            queries.to(dtype), gallery.to(dtype), 10, query_chunk=6, gallery_chunk=8
        )
        assert values.dtype == torch.float32
        np.testing.assert_array_equal(indices.numpy(), expected)


def test_agrees_with_scikit_learn_on_random_features():
    generator = torch.Generator().manual_seed(2)
    queries = torch.randn(40, 3, 4, 4, generator=generator)  # flattened to 48 dims
    gallery = torch.randn(300, 3, 4, 4, generator=generator)
    query_labels = torch.randint(0, 5, (40,), generator=generator)
    gallery_labels = torch.randint(0, 5, (300,), generator=generator)
    reference = NearestNeighbors(n_neighbors=20, metric="cosine", algorithm="brute")
    reference.fit(gallery.flatten(1).double().numpy())
    distance, expected = reference.kneighbors(queries.flatten(1).double().numpy())
    values, indices = nearest_neighbours(queries, gallery, 20, query_chunk=7, gallery_chunk=13)
    np.testing.assert_array_equal(indices.numpy(), expected)
    np.testing.assert_allclose(values.numpy(), 1 - distance, atol=1e-5)

    accuracy = knn_topk_accuracy(
        queries, query_labels, gallery, gallery_labels, ks=(1, 5, 20), query_chunk=7
    )
    for k, value in accuracy.items():
        found = (gallery_labels.numpy()[expected[:, :k]] == query_labels.numpy()[:, None]).any(1)
        assert value == pytest.approx(found.mean())


def test_never_builds_the_full_query_by_gallery_matrix(monkeypatch):
    generator = torch.Generator().manual_seed(3)
    queries = torch.randn(32, 8, generator=generator)
    gallery = torch.randn(256, 8, generator=generator)
    labels_q, labels_g = torch.randint(0, 3, (32,)), torch.randint(0, 3, (256,))
    product_shapes = []
    real_mm = torch.mm

    def spy_mm(a, b, *args, **kwargs):
        product_shapes.append((a.shape[0], b.shape[1]))
        return real_mm(a, b, *args, **kwargs)

    monkeypatch.setattr(torch, "mm", spy_mm)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        knn_hits(queries, labels_q, gallery, labels_g, ks=(1, 5), query_chunk=8, gallery_chunk=64)
    # All similarity blocks are at most 8 × 64, and they cover all 32 × 256 pairs.
    assert product_shapes and all(q <= 8 and g <= 64 for q, g in product_shapes)
    assert sum(q * g for q, g in product_shapes) == 32 * 256
    # No single allocation comes near a float32 32 × 256 matrix (32 KiB): the largest is at most
    # 8 bytes per entry of one 8 × 64 block (4 KiB).
    largest = max(event.self_cpu_memory_usage for event in profiler.events())
    assert 0 < largest <= 8 * 64 * 8


def test_k_larger_than_gallery_is_rejected():
    queries, query_labels, gallery, gallery_labels = _hand_example()
    with pytest.raises(ValueError, match="exceeds the gallery size 5"):
        knn_topk_accuracy(queries, query_labels, gallery, gallery_labels)  # default ks up to 50
    with pytest.raises(ValueError, match="gallery size = 5"):
        nearest_neighbours(queries, gallery, 6)
    assert knn_topk_accuracy(queries, query_labels, gallery, gallery_labels, ks=(5,)) == {5: 1.0}


def test_bad_inputs_are_rejected():
    queries, query_labels, gallery, gallery_labels = _hand_example()
    with pytest.raises(ValueError, match="feature sizes differ"):
        nearest_neighbours(queries, torch.ones(4, 3), 1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        nearest_neighbours(queries, gallery.index_fill(0, torch.tensor([1]), float("nan")), 1)
    with pytest.raises(ValueError, match="labels must have shape"):
        knn_hits(queries, query_labels[:2], gallery, gallery_labels, ks=(1,))
    with pytest.raises(ValueError, match="integer class indices"):
        knn_hits(queries, query_labels.float(), gallery, gallery_labels, ks=(1,))
    with pytest.raises(ValueError, match="distinct positive"):
        knn_hits(queries, query_labels, gallery, gallery_labels, ks=(1, 1))


def test_all_zero_feature_is_counted_and_logged(caplog):
    queries, _, gallery, _ = _hand_example()
    gallery[1] = 0.0
    with caplog.at_level("WARNING", logger="ssl_rl.eval.retrieval"):
        values, _ = nearest_neighbours(queries, gallery, 5)
    assert "1 of 5 gallery features are all-zero" in caplog.text
    assert torch.isfinite(values).all()
