"""Whole VOC images with their 20-class targets, for multi-label classification (SPEC §3)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import Dataset

from ssl_rl.data.readers.image_folder import load_rgb
from ssl_rl.data.readers.voc07 import VOC07Index


class VOCImageDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Item i: (``transform(image)``, int8 (20,) target row: 1 present, 0 difficult, -1 absent).

    The transform gets the image as a uint8 (3, H, W) RGB tensor (torchvision v2 transforms
    accept it); without one the uint8 tensor itself is returned. The loss decides what the
    0 entries mean (the protocol ignores them).
    """

    def __init__(
        self,
        index: VOC07Index,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.images = list(index.images)
        self.targets = index.targets()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = load_rgb(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]
