"""Temporal ordering head: fc6 per frame → LSTM over the frames in shuffled order → fc."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssl_rl.nets.order_head import OrderHead, init_linear_

READOUTS = ("last", "all")


class TemporalOrderHead(OrderHead):
    """fc6 (Linear+ReLU+Dropout) on each frame's flattened pool5 (B, n, in_dim), a one-layer
    LSTM (batch_first) over the frames, its output → fc to `num_classes` = |Ψ_T|.

    `readout` [stand-in] picks the LSTM output the classifier sees: "last", the final hidden
    state; or "all", the hidden states of all n steps concatenated (step t's state says how
    frame t relates to the frames before it, so nothing has to survive n recurrent steps; with
    SGD it learns the order several times faster than "last").
    """

    def __init__(
        self,
        in_dim: int,
        num_parts: int = 8,
        num_classes: int = 1000,
        fc6_dim: int = 1024,
        hidden_dim: int = 1024,
        dropout: float = 0.5,
        readout: str = "last",
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(
                f"TemporalOrderHead: readout must be one of {READOUTS}, got {readout!r}"
            )
        self.readout = readout
        # The classifier reads the LSTM states of steps first_read..n-1 (0-based), concatenated.
        self.first_read = 0 if readout == "all" else num_parts - 1
        self.num_parts = num_parts
        self.num_classes = num_classes
        self.feature_dim = fc6_dim
        self.fc6 = nn.Linear(in_dim, fc6_dim)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(fc6_dim, hidden_dim, batch_first=True)
        self.classifier = nn.Linear((num_parts - self.first_read) * hidden_dim, num_classes)
        init_linear_(self.fc6, followed_by_relu=True)
        init_linear_(self.classifier, followed_by_relu=False)

    def order_logits(self, features: Tensor) -> Tensor:
        """Run the LSTM over the frames in the given order; classify its output (`readout`)."""
        self._check_part_features(features)
        outputs, _ = self.lstm(features)
        logits: Tensor = self.classifier(outputs[:, self.first_read :].flatten(1))
        return logits

    def _order_independent_terms(self, features: Tensor) -> Tensor:
        """LSTM input projection W_ih f_j + b_ih + b_hh of every frame: (V, n, 4·hidden)."""
        lstm = self.lstm
        weight_ih, bias_ih, bias_hh = (
            _tensor(lstm.weight_ih_l0),
            _tensor(lstm.bias_ih_l0),
            _tensor(lstm.bias_hh_l0),
        )
        return features @ weight_ih.T + (bias_ih + bias_hh)

    def _score_order_chunk(self, terms: Tensor, orders: Tensor) -> Tensor:
        """nn.LSTM's recurrence on the permuted projections, once per distinct order prefix.

        Orders sharing their first t frames share the first t LSTM states, so step t runs only
        on the distinct prefixes of length t (and the first step, from a zero state, needs no
        recurrent matmul). The classifier is linear in the states it reads, W·concat_t h_t =
        Σ_t W_t h_t, so each prefix carries its partial logits from the first step read on.
        """
        weight_hh = _tensor(self.lstm.weight_hh_l0)
        size = self.lstm.hidden_size
        hidden = cell = partial_logits = None
        steps, final_index = _prefix_tree(orders)
        for step, (parent, frame) in enumerate(steps):
            gates = terms.index_select(1, frame)  # (V, distinct prefixes, 4·hidden), a fresh tensor
            if hidden is not None:
                gates += (hidden @ weight_hh.T).index_select(1, parent)
            # In place, and index_select rather than indexing: memory traffic, not the matmul,
            # dominates this loop on CPU otherwise.
            gates[..., : 2 * size].sigmoid_()  # input and forget gates
            gates[..., 2 * size : 3 * size].tanh_()  # cell candidate
            gates[..., 3 * size :].sigmoid_()  # output gate
            in_gate, forget_gate, candidate, out_gate = torch.split(gates, size, dim=-1)
            new_cell = candidate.mul_(in_gate)
            if cell is not None:
                new_cell.addcmul_(forget_gate, cell.index_select(1, parent))
            cell = new_cell
            hidden = out_gate.mul_(torch.tanh(cell))
            if step >= self.first_read:
                block = step - self.first_read
                contribution = (
                    hidden @ self.classifier.weight[:, block * size : (block + 1) * size].T
                )
                if partial_logits is not None:
                    contribution += partial_logits.index_select(1, parent)
                partial_logits = contribution
        assert partial_logits is not None  # num_parts >= 1, and the last step is always read
        bias: Tensor = self.classifier.bias
        return partial_logits.index_select(1, final_index) + bias

    def scoring_bytes(self, num_samples: int, chunk_size: int) -> int:
        hidden = self.lstm.hidden_size
        terms = num_samples * self.num_parts * 4 * hidden
        # per order at the widest step: gates, recurrent product and its gather (3 × 4H),
        # gate activations (4H), previous and new hidden/cell state (4H), logits
        # (readout "all": the partial logits of the previous and the current step, and their sum)
        logits = (3 if self.readout == "all" else 1) * self.num_classes
        per_order = num_samples * (20 * hidden + logits)
        return (terms + chunk_size * per_order) * self._param_element_size()


def _prefix_tree(orders: Tensor) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
    """Distinct prefixes of the orders (Q, n), level by level.

    Returns, for each step t = 1..n, (parent, frame): for every distinct prefix of length t, the
    index of its length t−1 prefix among the previous step's prefixes and its last frame; and,
    per order, the index of its full sequence among the last step's prefixes.
    """
    num_orders = orders.shape[0]
    order_ids = torch.arange(num_orders, device=orders.device)
    prefix_of_order = torch.zeros(num_orders, dtype=torch.long, device=orders.device)
    steps: list[tuple[Tensor, Tensor]] = []
    for length in range(1, orders.shape[1] + 1):
        prefixes, inverse = torch.unique(orders[:, :length], dim=0, return_inverse=True)
        # Any order with a given prefix represents it; all agree on parent and frame.
        representative = torch.empty(len(prefixes), dtype=torch.long, device=orders.device)
        representative.scatter_(0, inverse, order_ids)
        steps.append((prefix_of_order[representative], prefixes[:, -1]))
        prefix_of_order = inverse
    return steps, prefix_of_order


def _tensor(value: Tensor | nn.Module) -> Tensor:
    """nn.LSTM's per-layer parameters, which its stubs type as Tensor | Module."""
    assert isinstance(value, Tensor)
    return value
