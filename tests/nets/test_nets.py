"""CaffeNet-BN trunk and ordering heads: shapes, layer access, input checks, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from ssl_rl.nets import CONV_LAYERS, LAYER_ORDER, CaffeNetTrunk, SpatialOrderHead, TemporalOrderHead


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("size", [36, 40])
def test_demo_trunk_pool5_shape_matches_output_dim(size: int) -> None:
    trunk = CaffeNetTrunk(width=0.25)
    pool5 = trunk(torch.randn(3, 3, size, size))
    spatial = trunk.layer_sizes(size)["pool5"]
    assert pool5.shape == (3, 64, *spatial)
    assert min(spatial) >= 1
    assert pool5[0].numel() == trunk.output_dim(size)


def test_paper_scale_tile_trunk_gives_noroozi_fc6_input() -> None:
    trunk = CaffeNetTrunk(width=1.0, conv1_stride=2)
    assert trunk.channels == (96, 256, 384, 384, 256)
    assert trunk(torch.randn(2, 3, 64, 64)).shape == (2, 256, 3, 3)
    assert trunk.output_dim(64) == 2304


def test_paper_scale_transfer_trunk_gives_caffenet_pool5() -> None:
    trunk = CaffeNetTrunk(width=1.0, conv1_stride=4)
    with torch.no_grad():
        assert trunk(torch.randn(2, 3, 227, 227)).shape == (2, 256, 6, 6)
    assert trunk.output_dim(227) == 9216


@pytest.mark.parametrize("stride", [2, 4])
def test_analytic_sizes_match_real_forward(stride: int) -> None:
    trunk = CaffeNetTrunk(width=0.02, conv1_stride=stride).eval()
    smallest = trunk.min_input_size()
    with torch.no_grad():
        for size in range(smallest, smallest + 40, 3):
            layers = trunk.forward_layers(torch.randn(1, 3, size, size + 5), LAYER_ORDER)
            expected = trunk.layer_sizes(size, size + 5)
            assert {name: tuple(t.shape[-2:]) for name, t in layers.items()} == expected


def test_forward_layers_returns_conv_activations_after_relu() -> None:
    trunk = CaffeNetTrunk(width=0.25)
    x = torch.randn(2, 3, 40, 40)
    layers = trunk.forward_layers(x, CONV_LAYERS)
    assert list(layers) == list(CONV_LAYERS)
    sizes = trunk.layer_sizes(40)
    for name, channels in zip(CONV_LAYERS, trunk.channels, strict=True):
        assert layers[name].shape == (2, channels, *sizes[name])
        assert layers[name].min() >= 0
    torch.testing.assert_close(trunk.forward_until(x, "pool5"), trunk(x))


def test_forward_layers_rejects_unknown_layer() -> None:
    with pytest.raises(ValueError, match="fc6"):
        CaffeNetTrunk(width=0.1).forward_layers(torch.randn(1, 3, 40, 40), ["conv1", "fc6"])


def test_too_small_input_raises_clear_error() -> None:
    trunk = CaffeNetTrunk(width=0.1, conv1_stride=2)
    smallest = trunk.min_input_size()
    trunk(torch.randn(1, 3, smallest, smallest))
    with pytest.raises(ValueError, match=rf"too small.*at least {smallest} px"):
        trunk(torch.randn(1, 3, smallest - 1, smallest - 1))
    with pytest.raises(ValueError, match="too small"):
        trunk.output_dim(16)


def test_wrong_channel_count_raises() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        CaffeNetTrunk(width=0.1)(torch.randn(1, 1, 40, 40))


def test_width_and_groups_give_valid_channel_counts() -> None:
    assert CaffeNetTrunk(width=1e-3).channels == (1, 1, 1, 1, 1)
    grouped = CaffeNetTrunk(width=0.3, groups=2, in_channels=1)
    assert all(c % 2 == 0 for c in grouped.channels)
    assert grouped.conv2.conv.groups == 2 and grouped.conv3.conv.groups == 1
    assert grouped(torch.randn(2, 1, 40, 40)).shape[1] == grouped.out_channels


def test_trunk_init_is_kaiming_and_unit_batch_norm() -> None:
    trunk = CaffeNetTrunk(width=0.5)
    conv = trunk.conv3.conv
    fan_in = conv.in_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    for module in trunk.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)


def test_forward_parts_flattens_pool5_per_part() -> None:
    trunk = CaffeNetTrunk(width=0.25).eval()
    parts = torch.randn(2, 4, 3, 36, 36)
    features = trunk.forward_parts(parts)
    assert features.shape == (2, 4, trunk.output_dim(36))
    torch.testing.assert_close(features[1, 2], trunk(parts[1, 2:3]).flatten())


def test_spatial_head_shapes() -> None:
    head = SpatialOrderHead(in_dim=50, num_classes=30, fc6_dim=16, fc7_dim=32)
    pool5 = torch.randn(4, 9, 50)
    assert head.part_features(pool5).shape == (4, 9, 16)
    assert head(pool5).shape == (4, 30)
    assert head.fc7.in_features == 9 * 16
    with pytest.raises(ValueError, match=r"\(B, 9, F\)"):
        head.order_logits(torch.randn(4, 8, 16))


def test_temporal_head_shapes() -> None:
    head = TemporalOrderHead(in_dim=50, num_classes=30, fc6_dim=16, hidden_dim=12)
    pool5 = torch.randn(4, 8, 50)
    assert head.part_features(pool5).shape == (4, 8, 16)
    assert head(pool5).shape == (4, 30)
    assert head.lstm.hidden_size == 12 and head.lstm.batch_first
    with pytest.raises(ValueError, match=r"\(B, 8, F\)"):
        head.order_logits(torch.randn(4, 9, 16))


def test_paper_default_head_sizes() -> None:
    with torch.device("meta"):  # shapes only; no memory, no initialisation cost
        spatial = SpatialOrderHead(in_dim=2304)
        temporal = TemporalOrderHead(in_dim=2304)
    assert (spatial.fc6.out_features, spatial.fc7.in_features) == (1024, 9 * 1024)
    assert (spatial.fc7.out_features, spatial.classifier.out_features) == (4096, 1000)
    assert (temporal.num_parts, temporal.lstm.hidden_size, temporal.classifier.out_features) == (
        8,
        1024,
        1000,
    )


@pytest.mark.parametrize("head_cls", [SpatialOrderHead, TemporalOrderHead])
def test_gradient_flows_from_each_head_to_conv1(head_cls: type) -> None:
    trunk = CaffeNetTrunk(width=0.1)
    size = 36
    head = head_cls(in_dim=trunk.output_dim(size), num_classes=5, fc6_dim=8)
    parts = torch.randn(3, head.num_parts, 3, size, size)
    loss = F.cross_entropy(head(trunk.forward_parts(parts)), torch.tensor([0, 3, 4]))
    loss.backward()
    grad = trunk.conv1.conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0
