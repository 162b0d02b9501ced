"""Pretext transforms in two stages: uint8 crops in the loader workers, the rest on the device.

A worker's share is what only the CPU can do cheaply per sample: read, crop, gather the parts
and draw every random number. It ships uint8 pixels (a quarter of float32's bytes through
worker queues and pinned memory) and the draws as small tensors. The float conversion,
grayscale, channel choices, resizing of parts and per-part standardisation run batched where
the batch lands (the GPU in training), in :meth:`TwoStageTransform.finish`. Calling the
transform on one input runs both stages on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import default_collate

RawSample = dict[str, Tensor]


class TwoStageTransform:
    """Base of the pretext transforms: ``sample`` (worker) then ``finish`` (device, batched).

    ``collate`` makes a batch of samples (a few tensors: Lightning's transfer walks any Python
    object element by element); ``host_keys`` name batch entries that ``finish`` reads on the
    host, which stay there through the transfer.
    """

    host_keys: tuple[str, ...] = ()

    def collate(self, samples: Sequence[RawSample]) -> RawSample:
        """A batch of worker samples, as tensors."""
        batch: RawSample = default_collate(list(samples))
        return batch

    def sample(self, data: Tensor, generator: torch.Generator | None = None) -> RawSample:
        """One input → uint8 parts and the draws the device stage needs."""
        raise NotImplementedError

    def finish(self, batch: RawSample) -> Tensor:
        """A collated batch of samples → float parts (B, n, C, h, w) on the batch's device."""
        raise NotImplementedError

    def __call__(self, data: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Both stages on one input: float parts (n, C, h, w)."""
        return self.finish(self.collate([self.sample(data, generator)]))[0]


# Device types whose tensors the host reads for free: no queued device work to wait for.
FREE_READS = ("cpu",)


def reads_free(device: torch.device) -> bool:
    """Whether the host may read values on ``device`` in the device stage (see ``may_apply``)."""
    return device.type in FREE_READS


def may_apply(mask: Tensor) -> bool:
    """Whether a batched optional step (grayscale, a channel choice) must run for ``mask``: on the
    CPU only when a sample asks for it; elsewhere always, masked per sample, since asking the
    device which samples do would make the host wait for all queued work (a synchronisation
    per batch). Masked or skipped, the samples get the same values."""
    return not reads_free(mask.device) or bool(mask.any())


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
        return torch.stack(cast(list[Tensor], crops))  # slices of a Tensor
    return torch.from_numpy(np.stack(crops))


class TwoStagePretext:
    """Defaults of a task's pretext data (its datasets' batches are plain tensors)."""

    @property
    def host_keys(self) -> tuple[str, ...]:
        """Batch entries ``finish`` reads on the host: they are not moved to the device."""
        return ()

    def collate(self, samples: Sequence[RawSample]) -> RawSample:
        """A batch of the datasets' samples."""
        batch: RawSample = default_collate(list(samples))
        return batch

    def placed(self, stage_on_device: bool) -> TwoStagePretext:
        """This pretext for a run whose second stage runs on the device (True) or in the
        loader workers (False)."""
        return self
