"""The spatial task's data: images cut into a grid of unpermuted tiles (Noroozi & Favaro)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ssl_rl.data.pretext.image_parts_dataset import ImagePartsDataset
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform


@dataclass(frozen=True)
class JigsawPretext:
    """Images → ``(grid², 3, tile_size, tile_size)`` tiles; the task's permutations shuffle them."""

    grid: int = 3
    resize: int = 256
    crop: int = 255
    tile_crop: int = 64
    tile_size: int = 64
    gray_prob: float = 0.3
    channel_shift: int = 2
    val_views: int = 1

    def dataset(self, samples: Sequence[Path], train: bool, seed: int, views: int = 1) -> Dataset:
        if views != 1:
            raise ValueError(f"a jigsaw puzzle has one fixed view per image, got views={views}")
        transform = JigsawTransform(
            self.grid,
            self.resize,
            self.crop,
            self.tile_crop,
            self.tile_size,
            self.gray_prob,
            self.channel_shift,
            train=train,
        )
        return ImagePartsDataset(list(samples), transform, seed=seed)
