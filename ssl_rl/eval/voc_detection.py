"""Whole VOC07 images with their boxes, for detection fine-tuning and evaluation."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssl_rl.data.pretext.part_normalization import normalize_per_part
from ssl_rl.data.readers.image_folder import load_rgb
from ssl_rl.data.readers.voc07 import VOC07Index
from ssl_rl.eval.transforms import IMAGENET_MEAN, IMAGENET_STD, Normalization


def voc_to_continuous(boxes: Tensor) -> Tensor:
    """1-based inclusive pixel boxes (the devkit's) → 0-based continuous corners (torchvision's):
    pixels xmin..xmax cover [xmin - 1, xmax)."""
    return boxes - torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=boxes.dtype)


def continuous_to_voc(boxes: Tensor) -> Tensor:
    """Inverse of :func:`voc_to_continuous` (detections to the devkit's convention)."""
    return boxes + torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=boxes.dtype, device=boxes.device)


class VOCDetectionDataset(Dataset[tuple[Tensor, dict[str, Tensor]]]):
    """Item i: (float (3, H, W) normalised image, target) at the image's own size.

    ``target``: ``boxes`` (M, 4) float, 0-based continuous; ``labels`` (M,) int64 in 1..20
    (0 is background in torchvision's detectors); ``difficult`` (M,) bool. Training flips
    image and boxes horizontally with probability 1/2 (Fast R-CNN's augmentation).
    """

    def __init__(
        self, index: VOC07Index, train: bool, normalization: Normalization = "per_image"
    ) -> None:
        self.images = list(index.images)
        self.targets = []
        for objects in index.objects:
            boxes = torch.tensor([obj.box for obj in objects], dtype=torch.float32).reshape(-1, 4)
            self.targets.append(
                {
                    "boxes": voc_to_continuous(boxes),
                    "labels": torch.tensor([obj.label + 1 for obj in objects], dtype=torch.int64),
                    "difficult": torch.tensor([obj.difficult for obj in objects], dtype=torch.bool),
                }
            )
        self.train = train
        self.normalization = normalization
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Tensor]]:
        image = load_rgb(self.images[i]).float().div_(255.0)
        target = {key: value.clone() for key, value in self.targets[i].items()}
        if self.train and torch.rand(()) < 0.5:
            image = image.flip(-1)
            width = image.shape[-1]
            boxes = target["boxes"]
            target["boxes"] = torch.stack(
                [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1
            )
        if self.normalization == "per_image":
            image = normalize_per_part(image)
        else:
            image = (image - self.mean) / self.std
        return image, target


def collate_detection(batch: list[tuple[Tensor, dict[str, Tensor]]]) -> Any:
    """Images of different sizes stay a list (the detector resizes and pads them)."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
