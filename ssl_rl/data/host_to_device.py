"""Host tensors onto the device without making the host wait for the device's queued work.

``tensor.to(cuda)`` from ordinary (pageable) host memory, and ``torch.tensor(values,
device=cuda)``, wait until the device has finished everything queued before them: in a
training step that is a synchronisation, after which the device idles while the host prepares
the next step. A copy from pinned memory with ``non_blocking=True`` is queued like a kernel;
small constants are copied once per device and kept.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor


def to_device_async(tensor: Tensor, device: torch.device | str) -> Tensor:
    """``tensor`` on ``device``; from the host through pinned memory, queued without waiting.

    The caller may keep and reuse ``tensor``: the copy reads a pinned copy of it, whose memory
    PyTorch's host allocator does not hand out again before the device has read it.
    """
    device = torch.device(device)
    if device.type == "cpu" or tensor.device == device:
        return tensor.to(device)
    if tensor.device.type == "cpu" and torch.cuda.is_available():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


@cache
def _constant(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.tensor(values, dtype=dtype).to(device)


def device_constant(
    values: tuple[float, ...], dtype: torch.dtype, device: torch.device | str
) -> Tensor:
    """A small constant tensor on ``device``, copied there once (later calls reuse it).

    Callers must not modify it in place."""
    return _constant(tuple(values), dtype, torch.device(device))
