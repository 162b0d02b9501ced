"""Common interface of the ordering heads and the chunked all-permutation scoring.

A head splits into a permutation-independent per-part stage (`part_features`, e.g. fc6 on each
tile) and an order-dependent stage (`order_logits`). `score_all_orders` evaluates the
order-dependent stage for every permutation from one set of part features, which is what makes
the policy's validation state (|Ψ| × |X_val| classifications) cheap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import Tensor, nn

DEFAULT_CHUNK_BYTES = 2**30


def init_linear_(layer: nn.Linear, followed_by_relu: bool) -> None:
    """Kaiming-normal weight (gain for ReLU or linear output), zero bias."""
    if followed_by_relu:
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
    else:
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="linear")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class OrderHead(nn.Module, ABC):
    """Predicts which permutation of Ψ shuffled the `num_parts` parts of a sample.

    Subclasses define the per-part layers `fc6` and `dropout` and implement `order_logits` and
    the two halves of the cheap scoring: `_order_independent_terms` (once per sample) and
    `_score_order_chunk` (per chunk of orders). `score_all_orders` equals running `order_logits`
    on explicitly permuted features only in eval mode (dropout off), so it refuses to run in
    training mode.
    It is a validation tool: it runs without autograd (and uses in-place operations). Put the
    trunk that produced the features in eval mode as well, so batch norm uses running statistics.
    """

    num_parts: int
    num_classes: int
    feature_dim: int
    fc6: nn.Linear
    dropout: nn.Dropout

    def part_features(self, pool5: Tensor) -> Tensor:
        """Permutation-independent per-part features, fc6 (Linear+ReLU+Dropout) on every part:
        (B, n, D) → (B, n, F)."""
        features: Tensor = self.dropout(torch.relu(self.fc6(pool5)))
        return features

    @abstractmethod
    def order_logits(self, features: Tensor) -> Tensor:
        """Logits (B, num_classes) for part features (B, n, F) given in their shuffled order."""

    def _check_part_features(self, features: Tensor) -> None:
        """``order_logits``' input must be (B, num_parts, F)."""
        if features.dim() != 3 or features.shape[1] != self.num_parts:
            raise ValueError(
                f"{type(self).__name__} expects (B, {self.num_parts}, F) features, "
                f"got {tuple(features.shape)}"
            )

    def forward(self, pool5: Tensor) -> Tensor:
        """Logits (B, num_classes) for flattened pool5 features (B, n, D) in shuffled order."""
        return self.order_logits(self.part_features(pool5))

    @abstractmethod
    def _order_independent_terms(self, features: Tensor) -> Tensor:
        """Everything of the order-dependent stage that can be computed once per sample."""

    @abstractmethod
    def _score_order_chunk(self, terms: Tensor, orders: Tensor) -> Tensor:
        """Logits (V, Qc, num_classes) for a chunk of orders (Qc, n), from `terms`."""

    @abstractmethod
    def scoring_bytes(self, num_samples: int, chunk_size: int) -> int:
        """Estimated bytes of the largest live intermediates of `score_all_orders` (terms plus
        one chunk's temporaries and logits, not the returned (V, Q, C) tensor)."""

    def _param_element_size(self) -> int:
        return next(self.parameters()).element_size()

    def auto_chunk_size(self, num_samples: int, max_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
        """Largest chunk of orders whose intermediates stay within `max_bytes` (at least 1)."""
        base = self.scoring_bytes(num_samples, 0)
        per_order = self.scoring_bytes(num_samples, 1) - base
        return max(1, (max_bytes - base) // max(per_order, 1))

    def _check_scoring_inputs(self, features: Tensor, orders: Tensor) -> Tensor:
        if self.training:
            raise RuntimeError(
                f"{type(self).__name__}.score_all_orders needs eval mode (dropout off) to match "
                "the permuted forward pass; call .eval() first and .train() afterwards"
            )
        n = self.num_parts
        if features.dim() != 3 or features.shape[1] != n or features.shape[2] != self.feature_dim:
            raise ValueError(
                f"{type(self).__name__}: features must be (V, {n}, {self.feature_dim}) "
                f"(output of part_features), got {tuple(features.shape)}"
            )
        if (
            orders.dim() != 2
            or orders.shape[0] < 1
            or orders.shape[1] != n
            or orders.dtype != torch.long
        ):
            raise ValueError(
                f"{type(self).__name__}: orders must be a LongTensor (Q >= 1, {n}), "
                f"got {orders.dtype} {tuple(orders.shape)}"
            )
        orders = orders.to(features.device)
        identity = torch.arange(n, device=orders.device).expand_as(orders)
        if not torch.equal(orders.sort(dim=1).values, identity):
            raise ValueError(
                f"{type(self).__name__}: every row of orders must be a permutation of 0..{n - 1}"
            )
        return orders

    def iter_order_logits(
        self, features: Tensor, orders: Tensor, chunk_size: int | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (indices into orders (Qc,), logits (V, Qc, num_classes)) chunk by chunk.

        Lets callers reduce each chunk (e.g. to softmax ratios; the true class of column c is
        indices[c]) without holding (V, Q, C). Orders are visited in lexicographic order, so a
        chunk holds orders with common prefixes (which the temporal head computes only once).
        `chunk_size=None` picks the largest chunk within `DEFAULT_CHUNK_BYTES`.
        """
        orders = self._check_scoring_inputs(features, orders)
        if chunk_size is None:
            chunk_size = self.auto_chunk_size(features.shape[0])
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        visit = lexicographic_order(orders)
        with torch.no_grad():
            terms = self._order_independent_terms(features)
        for start in range(0, orders.shape[0], chunk_size):
            indices = visit[start : start + chunk_size]
            with torch.no_grad():
                logits = self._score_order_chunk(terms, orders[indices])
            yield indices, logits

    def score_all_orders(
        self, features: Tensor, orders: Tensor, chunk_size: int | None = None
    ) -> Tensor:
        """Logits (V, Q, num_classes) with out[v, q] = order_logits(features[v, orders[q]]).

        features: (V, n, F) from `part_features`; orders: LongTensor (Q, n), row q puts part
        orders[q, k] into slot k. Eval mode only (see class docstring). Chunks of `chunk_size`
        orders bound the memory; None chooses it from `DEFAULT_CHUNK_BYTES`.
        """
        out: Tensor | None = None
        for indices, logits in self.iter_order_logits(features, orders, chunk_size):
            if out is None:
                out = logits.new_empty(logits.shape[0], orders.shape[0], logits.shape[2])
            out[:, indices] = logits
        assert out is not None  # orders has at least one row (checked)
        return out


def lexicographic_order(rows: Tensor) -> Tensor:
    """Indices that sort the rows of a 2-D integer tensor lexicographically (stable)."""
    index = torch.arange(rows.shape[0], device=rows.device)
    for column in reversed(range(rows.shape[1])):
        index = index[torch.argsort(rows[index, column], stable=True)]
    return index
