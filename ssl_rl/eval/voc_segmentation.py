"""VOC 2012 images with their label maps, transformed jointly, for FCN fine-tuning."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.pretext.part_normalization import normalize_per_part
from ssl_rl.data.readers.image_folder import load_rgb
from ssl_rl.data.readers.voc12_seg import IGNORE_INDEX, VOC12SegIndex, load_label_map
from ssl_rl.eval.transforms import IMAGENET_MEAN, IMAGENET_STD, Normalization


class SegmentationTransform:
    """Train: random resized crop to ``size``² and horizontal flip of image and labels together
    (labels by nearest neighbour); eval: the image
    resized to ``size``² and the labels left at full resolution (the prediction is upsampled to
    them, so every pixel of the original label map is scored)."""

    def __init__(
        self,
        size: int,
        train: bool,
        min_scale: float = 0.5,
        normalization: Normalization = "per_image",
    ) -> None:
        self.train = train
        self.normalization = normalization
        if train:
            self.geometry = v2.Compose(
                [
                    v2.RandomResizedCrop(size, scale=(min_scale, 1.0), antialias=True),
                    v2.RandomHorizontalFlip(),
                ]
            )
        else:
            self.geometry = v2.Resize((size, size), antialias=True)
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __call__(
        self, image: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (3, H, W), int64 (H, W) → float (3, size, size), int64 labels."""
        if self.train:
            image, mask = self.geometry(tv_tensors.Image(image), tv_tensors.Mask(labels))
            labels = mask.as_subclass(torch.Tensor)
        else:
            image = self.geometry(image)
        x = image.as_subclass(torch.Tensor).float().div_(255.0)
        if self.normalization == "per_image":
            x = normalize_per_part(x)
        else:
            x = (x - self.mean) / self.std
        return x, labels


class VOCSegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Item i: the transformed image and label map of ``index``'s i-th image (255 = void)."""

    def __init__(self, index: VOC12SegIndex, transform: SegmentationTransform) -> None:
        self.images = list(index.images)
        self.label_maps = list(index.label_maps)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, labels = load_rgb(self.images[i]), load_label_map(self.label_maps[i])
        if image.shape[1:] != labels.shape:
            raise DatasetError(
                f"{self.label_maps[i]} is {tuple(labels.shape)} (H, W) but its image "
                f"{self.images[i]} is {tuple(image.shape[1:])}; the label map must match"
            )
        return self.transform(image, labels)


def collate_segmentation(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """(inputs (B, 3, s, s), label maps padded with void to a common size (B, H, W), each
    label map's own (h, w) as (B, 2))."""
    images = torch.stack([image for image, _ in batch])
    height = max(labels.shape[0] for _, labels in batch)
    width = max(labels.shape[1] for _, labels in batch)
    padded = torch.full((len(batch), height, width), IGNORE_INDEX, dtype=torch.int64)
    for k, (_, labels) in enumerate(batch):
        padded[k, : labels.shape[0], : labels.shape[1]] = labels
    sizes = torch.tensor([tuple(labels.shape) for _, labels in batch], dtype=torch.int64)
    return images, padded, sizes
