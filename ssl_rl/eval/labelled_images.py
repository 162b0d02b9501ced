"""A plain (image, label) dataset over decoded files, for classifier training and probes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ssl_rl.data.readers.image_folder import load_rgb


class LabelledImages(Dataset[tuple[torch.Tensor, int]]):
    """Item i: ``(transform(uint8 (3, H, W) image), label)`` of ``samples[i]``."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        transform: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.samples = [(Path(p), int(label)) for p, label in samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return self.transform(load_rgb(path)), label
