"""Pretext transforms in two stages: uint8 crops in the loader workers, the rest on the device.

A worker's share is what only the CPU can do cheaply per sample: read, crop, gather the parts
and draw every random number. It ships uint8 pixels (a quarter of float32's bytes through
worker queues and pinned memory) and the draws as small tensors. The float conversion,
grayscale, channel choices, resizing of parts and per-part standardisation run batched where
the batch lands (the GPU in training), in :meth:`TwoStageTransform.finish`. Calling the
transform on one input runs both stages on it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import default_collate

RawSample = dict[str, Tensor]


class TwoStageTransform:
    """Base of the pretext transforms: ``sample`` (worker) then ``finish`` (device, batched)."""

    def sample(self, data: Tensor, generator: torch.Generator | None = None) -> RawSample:
        """One input → uint8 parts and the draws the device stage needs."""
        raise NotImplementedError

    def finish(self, batch: RawSample) -> Tensor:
        """A collated batch of samples → float parts (B, n, C, h, w) on the batch's device."""
        raise NotImplementedError

    def __call__(self, data: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Both stages on one input: float parts (n, C, h, w)."""
        return self.finish(default_collate([self.sample(data, generator)]))[0]


def stack_windows(pixels: Tensor, tops: list[int], lefts: list[int], size: int) -> Tensor:
    """``size``² windows at (top, left) corners of ``pixels`` → (n, size, size, C) uint8.

    ``pixels`` is one image (H, W, C), or several (n, H, W, C) with window i taken from image
    i. Rows of pixels copy as contiguous runs; on the CPU numpy's stack of the slices is ~3x
    faster than torch's for these small copies.
    """
    many = pixels.ndim == 4
    source = pixels.numpy() if pixels.device.type == "cpu" else pixels
    crops = [
        (source[i] if many else source)[y : y + size, x : x + size]
        for i, (y, x) in enumerate(zip(tops, lefts, strict=True))
    ]
    if isinstance(source, Tensor):
        return torch.stack(crops)
    return torch.from_numpy(np.stack(crops))
