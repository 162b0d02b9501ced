"""Jigsaw (spatial ordering) head: fc6 per tile → tiles stacked in puzzle order → fc7 → fc."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssl_rl.nets.order_head import OrderHead, init_linear_


class SpatialOrderHead(OrderHead):
    """Noroozi's context-free network head on flattened pool5 features (B, n, in_dim).

    fc6 (Linear+ReLU+Dropout) on each tile, the n fc6 outputs concatenated in puzzle-position
    order, fc7 (Linear+ReLU+Dropout), fc to `num_classes` = |Ψ_S|.
    """

    def __init__(
        self,
        in_dim: int,
        num_parts: int = 9,
        num_classes: int = 1000,
        fc6_dim: int = 1024,
        fc7_dim: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_parts = num_parts
        self.num_classes = num_classes
        self.feature_dim = fc6_dim
        self.fc6 = nn.Linear(in_dim, fc6_dim)
        self.fc7 = nn.Linear(num_parts * fc6_dim, fc7_dim)
        self.classifier = nn.Linear(fc7_dim, num_classes)
        self.dropout = nn.Dropout(dropout)
        init_linear_(self.fc6, followed_by_relu=True)
        init_linear_(self.fc7, followed_by_relu=True)
        init_linear_(self.classifier, followed_by_relu=False)

    def order_logits(self, features: Tensor) -> Tensor:
        """fc7 on the tiles' fc6 outputs concatenated in the given order, then the classifier."""
        self._check_part_features(features)
        hidden = self.dropout(torch.relu(self.fc7(features.flatten(1))))
        logits: Tensor = self.classifier(hidden)
        return logits

    def _order_independent_terms(self, features: Tensor) -> Tensor:
        """W_k f_j for every slot k and tile j: (n_slots, V, n_tiles, fc7_dim).

        fc7 is linear in the concatenation: W·concat_k f_ψ(k) = Σ_k W_k f_ψ(k).
        """
        num_samples, n, f = features.shape
        # Row h·n + k of this view is W_k's row h, so one matmul gives every (tile j, slot k).
        slot_rows = self.fc7.weight.view(-1, f)
        products = features.reshape(num_samples * n, f) @ slot_rows.T
        products = products.view(num_samples, n, -1, n)  # (V, tile j, H, slot k)
        return products.permute(3, 0, 1, 2).contiguous()

    def _score_order_chunk(self, terms: Tensor, orders: Tensor) -> Tensor:
        hidden = terms[0].index_select(1, orders[:, 0]).add_(self.fc7.bias)  # (V, Qc, H)
        for slot in range(1, self.num_parts):
            hidden += terms[slot].index_select(1, orders[:, slot])
        logits: Tensor = self.classifier(torch.relu_(hidden))
        return logits

    def scoring_bytes(self, num_samples: int, chunk_size: int) -> int:
        hidden = self.fc7.out_features
        terms = num_samples * self.num_parts**2 * hidden
        # accumulator + one gathered slot term + logits, per order
        per_order = num_samples * (2 * hidden + self.num_classes)
        return (terms + chunk_size * per_order) * self._param_element_size()
