"""Cheap all-permutation scoring equals permuting the inputs and running the full model."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from ssl_rl.nets import (
    CaffeNetTrunk,
    OrderHead,
    SpatialOrderHead,
    TemporalOrderHead,
    lexicographic_order,
)

TILE = 36
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU"),
    ),
]


def _make_head(kind: str, in_dim: int, num_parts: int | None = None) -> OrderHead:
    if kind == "spatial":
        head: OrderHead = SpatialOrderHead(
            in_dim, num_parts=num_parts or 9, num_classes=11, fc6_dim=12, fc7_dim=20
        )
    else:
        head = TemporalOrderHead(
            in_dim, num_parts=num_parts or 8, num_classes=11, fc6_dim=12, hidden_dim=10
        )
    for name, param in head.named_parameters():
        if name.endswith("bias") or "bias_" in name:
            nn.init.normal_(param, std=0.5)  # non-zero biases, so the bias paths are tested
    return head


def _trained_trunk(device: str) -> CaffeNetTrunk:
    """A tiny trunk whose batch-norm running statistics are not the identity."""
    trunk = CaffeNetTrunk(width=0.1).to(device)
    with torch.no_grad():
        trunk(torch.randn(16, 3, TILE, TILE, device=device) * 2 + 0.5)
    return trunk.eval()


def _random_orders(num_orders: int, num_parts: int) -> torch.Tensor:
    return torch.stack([torch.randperm(num_parts) for _ in range(num_orders)])


def _naive_logits(trunk: CaffeNetTrunk, head: OrderHead, parts: torch.Tensor, orders):
    """Permute the raw parts and run trunk + head for every (sample, order) pair."""
    return torch.stack([head(trunk.forward_parts(parts[:, order])) for order in orders], dim=1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["spatial", "temporal"])
@pytest.mark.parametrize("chunk_size", [3, 64, None])
def test_score_all_orders_matches_permuted_full_model(
    kind: str, chunk_size: int | None, device: str
) -> None:
    torch.manual_seed(1)
    trunk = _trained_trunk(device)
    head = _make_head(kind, trunk.output_dim(TILE)).to(device).eval()
    parts = torch.randn(4, head.num_parts, 3, TILE, TILE, device=device)
    orders = _random_orders(10, head.num_parts)  # 3 does not divide 10
    orders[7] = orders[2]  # a repeated order must be scored twice, identically
    # Both sides in full float32: cuDNN's LSTM (the naive side) uses TF32 matrix products by
    # default (torch.backends.cudnn.allow_tf32), whose 10-bit mantissa gave differences of 5e-4
    # on an H200 against the scoring's float32 matmuls. The test checks the algebra (the
    # gather, the linear split, shared prefixes), so it compares like with like.
    with torch.no_grad(), _full_float32():
        expected = _naive_logits(trunk, head, parts, orders)
        features = head.part_features(trunk.forward_parts(parts))
        scored = head.score_all_orders(features, orders, chunk_size=chunk_size)
    assert scored.shape == (4, 10, 11)
    assert (scored - expected).abs().max().item() <= 1e-4


@contextlib.contextmanager
def _full_float32() -> Iterator[None]:
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_all_orders_of_four_parts_share_prefixes_exactly(kind: str) -> None:
    torch.manual_seed(2)
    head = _make_head(kind, in_dim=7, num_parts=4).eval()
    features = head.part_features(torch.randn(5, 4, 7)).detach()
    orders = torch.tensor(list(itertools.permutations(range(4))))
    orders = orders[torch.randperm(len(orders))]
    with torch.no_grad():
        expected = torch.stack([head.order_logits(features[:, o]) for o in orders], dim=1)
        scored = head.score_all_orders(features, orders, chunk_size=5)
    assert (scored - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_iter_order_logits_visits_every_order_once(kind: str) -> None:
    head = _make_head(kind, in_dim=7).eval()
    features = torch.randn(2, head.num_parts, 12)
    orders = _random_orders(17, head.num_parts)
    full = head.score_all_orders(features, orders, chunk_size=4)
    seen = []
    for indices, logits in head.iter_order_logits(features, orders, chunk_size=4):
        assert logits.shape == (2, len(indices), 11)
        torch.testing.assert_close(logits, full[:, indices])
        seen.extend(indices.tolist())
    assert sorted(seen) == list(range(17))


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_scoring_refuses_training_mode(kind: str) -> None:
    head = _make_head(kind, in_dim=7).train()
    features = torch.randn(2, head.num_parts, 12)
    with pytest.raises(RuntimeError, match=r"eval\(\)"):
        head.score_all_orders(features, _random_orders(3, head.num_parts))


@pytest.mark.parametrize(
    ("orders", "message"),
    [
        (torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 7]]), "permutation"),
        (torch.arange(8).unsqueeze(0), r"\(Q >= 1, 9\)"),
        (torch.arange(9).unsqueeze(0).float(), "LongTensor"),
        (torch.empty(0, 9, dtype=torch.long), r"Q >= 1"),
    ],
)
def test_scoring_rejects_bad_orders(orders: torch.Tensor, message: str) -> None:
    head = _make_head("spatial", in_dim=7).eval()
    with pytest.raises(ValueError, match=message):
        head.score_all_orders(torch.randn(2, 9, 12), orders)


def test_scoring_rejects_features_that_are_not_part_features() -> None:
    head = _make_head("temporal", in_dim=7).eval()
    with pytest.raises(ValueError, match=r"\(V, 8, 12\)"):
        head.score_all_orders(torch.randn(2, 8, 7), _random_orders(3, 8))


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_auto_chunk_size_respects_byte_budget(kind: str) -> None:
    head = _make_head(kind, in_dim=7)
    budget = 1_000_000
    chunk = head.auto_chunk_size(num_samples=30, max_bytes=budget)
    assert chunk >= 1
    assert head.scoring_bytes(30, chunk) <= budget < head.scoring_bytes(30, chunk + 1)


def test_lexicographic_order_sorts_rows() -> None:
    rows = _random_orders(50, 5)
    rows[10] = rows[3]
    index = lexicographic_order(rows)
    assert sorted(index.tolist()) == list(range(50))
    assert [tuple(r) for r in rows[index].tolist()] == sorted(tuple(r) for r in rows.tolist())
