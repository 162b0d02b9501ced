"""The non-linear ImageNet probe: top-k against hand counts; only fc6–fc8 learn."""

from __future__ import annotations

import functools

import pytest
import torch

from ssl_rl.eval.nonlinear_probe import NonlinearProbe
from ssl_rl.eval.topk import topk_correct
from ssl_rl.nets.caffenet import CaffeNetTrunk


def test_topk_correct_by_hand() -> None:
    logits = torch.tensor(
        [
            [0.9, 0.05, 0.03, 0.02],  # label 0: top-1
            [0.1, 0.2, 0.6, 0.1],  # label 1: rank 2
            [0.4, 0.3, 0.2, 0.1],  # label 3: rank 4
        ]
    )
    labels = torch.tensor([0, 1, 3])
    assert topk_correct(logits, labels, 1).tolist() == [True, False, False]
    assert topk_correct(logits, labels, 2).tolist() == [True, True, False]
    assert topk_correct(logits, labels, 5).tolist() == [True, True, True]  # k > C: all
    with pytest.raises(ValueError, match="k must be"):
        topk_correct(logits, labels, 0)


def test_probe_trains_only_the_fc_layers_and_reports_topk() -> None:
    torch.manual_seed(0)
    trunk = CaffeNetTrunk(width=0.125, conv1_stride=4)
    probe = NonlinearProbe(
        trunk,
        num_classes=3,
        input_size=64,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        fc6_dim=16,
        fc7_dim=16,
        topk=(1, 2),
    )
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    optimizer = probe.configure_optimizers()
    probe.train()
    assert not trunk.training  # batch norm keeps the pretrained statistics
    images, labels = torch.randn(6, 3, 64, 64), torch.tensor([0, 1, 2, 0, 1, 2])
    head_before = [p.clone() for p in probe.head.parameters()]
    loss = probe.training_step((images, labels), 0)
    loss.backward()
    optimizer.step()
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, before[key]), key
    head_after = list(probe.head.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(head_before, head_after, strict=True))

    probe.eval()
    probe.on_validation_epoch_start()
    probe.validation_step((images, labels), 0)
    logits = probe(images)
    probe.log_dict = lambda *args, **kwargs: None  # type: ignore[method-assign]
    probe.on_validation_epoch_end()
    rank = (logits > logits.gather(1, labels[:, None])).sum(dim=1)  # 0 = top-1
    assert probe.last_metrics["top1"] == pytest.approx((rank < 1).float().mean().item())
    assert probe.last_metrics["top2"] == pytest.approx((rank < 2).float().mean().item())
