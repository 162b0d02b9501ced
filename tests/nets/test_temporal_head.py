"""The temporal head's readouts: the classifier on the last LSTM state or on all of them."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from ssl_rl.nets import TemporalOrderHead


def _head(readout: str, num_parts: int = 8) -> TemporalOrderHead:
    head = TemporalOrderHead(
        in_dim=7, num_parts=num_parts, num_classes=11, fc6_dim=12, hidden_dim=10, readout=readout
    )
    for name, param in head.named_parameters():
        if "bias" in name:
            nn.init.normal_(param, std=0.5)  # non-zero biases, so the bias paths are tested
    return head.eval()


@pytest.mark.parametrize(("readout", "classifier_inputs"), [("last", 10), ("all", 8 * 10)])
def test_classifier_reads_the_chosen_states(readout: str, classifier_inputs: int) -> None:
    head = _head(readout)
    assert head.classifier.in_features == classifier_inputs
    assert head(torch.randn(4, 8, 7)).shape == (4, 11)


def test_all_readout_concatenates_the_states_in_step_order() -> None:
    torch.manual_seed(0)
    head = _head("all")
    features = torch.randn(3, 8, 12)
    with torch.no_grad():
        states, _ = head.lstm(features)
        # Only step 2's block of the classifier is kept: the logits are that state's alone.
        kept = head.classifier.weight[:, 20:30].clone()
        head.classifier.weight.zero_()
        head.classifier.weight[:, 20:30] = kept
        expected = states[:, 2] @ kept.T + head.classifier.bias
        torch.testing.assert_close(head.order_logits(features), expected)


@pytest.mark.parametrize("readout", ["last", "all"])
@pytest.mark.parametrize("chunk_size", [5, None])
def test_cheap_scoring_matches_the_permuted_forward_pass(readout: str, chunk_size: int) -> None:
    torch.manual_seed(1)
    head = _head(readout, num_parts=4)
    features = head.part_features(torch.randn(5, 4, 7)).detach()
    orders = torch.tensor(list(itertools.permutations(range(4))))  # many shared prefixes
    orders = orders[torch.randperm(len(orders))]
    with torch.no_grad():
        expected = torch.stack([head.order_logits(features[:, o]) for o in orders], dim=1)
        scored = head.score_all_orders(features, orders, chunk_size=chunk_size)
    assert (scored - expected).abs().max().item() <= 1e-5


def test_all_readout_budgets_its_partial_logits() -> None:
    last, all_states = _head("last"), _head("all")
    per_order = all_states.scoring_bytes(3, 1) - all_states.scoring_bytes(3, 0)
    assert per_order - (last.scoring_bytes(3, 1) - last.scoring_bytes(3, 0)) == 3 * 2 * 11 * 4


def test_rejects_an_unknown_readout() -> None:
    with pytest.raises(ValueError, match="readout"):
        TemporalOrderHead(in_dim=7, readout="mean")
