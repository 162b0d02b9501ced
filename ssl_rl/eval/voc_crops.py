"""Object crops of VOC images for nearest-neighbour retrieval (SPEC §3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.image_folder import load_rgb
from ssl_rl.data.readers.voc07 import Box, ObjectCrop


def crop_box(image: torch.Tensor, box: Box) -> torch.Tensor:
    """The pixels of a 1-based inclusive ``box`` of a (C, H, W) image, clamped to the image."""
    height, width = image.shape[-2:]
    xmin, ymin, xmax, ymax = box
    left, top = max(xmin - 1, 0), max(ymin - 1, 0)
    right, bottom = min(xmax, width), min(ymax, height)
    if right <= left or bottom <= top:
        raise ValueError(f"box {box} lies outside the {width}x{height} image")
    return image[..., top:bottom, left:right]


class VOCCropDataset(Dataset[tuple[torch.Tensor, int]]):
    """Item i: (``transform(crop)``, label) of ``crops[i]``.

    The transform gets the box's pixels as a uint8 (3, h, w) RGB tensor; for the NN protocol
    it warps them to 227 × 227 [paper] and normalises (e.g. ``ssl_rl.eval.transforms.
    FixedResize``). Without one the uint8 crop itself is returned.
    """

    def __init__(
        self,
        crops: Sequence[ObjectCrop],
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.crops = list(crops)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def labels(self) -> list[int]:
        return [crop.label for crop in self.crops]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, box, label = self.crops[index]
        try:
            pixels = crop_box(load_rgb(path), box)
        except ValueError as error:
            raise DatasetError(f"{path}: {error}; check the annotation of this image") from None
        if self.transform is not None:
            pixels = self.transform(pixels)
        return pixels, label
