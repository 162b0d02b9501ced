"""Host → device copies that do not make the host wait (ssl_rl.data.host_to_device)."""

from __future__ import annotations

import torch

from ssl_rl.data.host_to_device import device_constant, to_device_async


def test_to_device_async_keeps_values_and_leaves_the_source_alone() -> None:
    source = torch.arange(6)
    moved = to_device_async(source, "meta")
    assert moved.device.type == "meta" and moved.shape == source.shape
    assert to_device_async(source, "cpu") is source
    assert torch.equal(source, torch.arange(6))


def test_device_constant_is_made_once_per_device_and_dtype() -> None:
    first = device_constant((0.299, 0.587, 0.114), torch.float32, "cpu")
    assert device_constant((0.299, 0.587, 0.114), torch.float32, torch.device("cpu")) is first
    assert torch.equal(first, torch.tensor((0.299, 0.587, 0.114), dtype=torch.float32))
    other = device_constant((0.299, 0.587, 0.114), torch.float64, "cpu")
    assert other is not first and other.dtype == torch.float64
    assert device_constant((0.299, 0.587, 0.114), torch.float32, "meta").device.type == "meta"
