"""Input pipeline of the transfer tasks: uint8 (3, H, W) images or frames → float inputs."""

from __future__ import annotations

from typing import Literal

import torch
from torchvision.transforms import v2

from ssl_rl.data.pretext.part_normalization import normalize_per_part

# ImageNet statistics for users who pick normalization=imagenet.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Normalization = Literal["per_image", "imagenet"]


class TransferTransform:
    """Train: random resized crop to ``input_size`` + horizontal flip; eval: resize the short
    side to ``resize`` and centre-crop ``input_size``. Then float in [0, 1] and normalisation:

    - ``per_image`` [decision]: each image standardised per channel by its own mean/std, the
      statistics the trunk saw in pretraining (every tile and frame was normalised that way);
    - ``imagenet``: fixed ImageNet mean/std.
    """

    def __init__(
        self,
        input_size: int = 227,
        resize: int = 256,
        train: bool = False,
        min_scale: float = 0.2,
        normalization: Normalization = "per_image",
    ) -> None:
        if normalization not in ("per_image", "imagenet"):
            raise ValueError(
                f"normalization must be 'per_image' or 'imagenet', got {normalization!r}"
            )
        if resize < input_size:
            raise ValueError(f"resize ({resize}) must be >= input_size ({input_size})")
        self.normalization = normalization
        if train:
            geometry = [
                v2.RandomResizedCrop(input_size, scale=(min_scale, 1.0), antialias=True),
                v2.RandomHorizontalFlip(),
            ]
        else:
            geometry = [v2.Resize(resize, antialias=True), v2.CenterCrop(input_size)]
        self.geometry = v2.Compose(geometry)
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 (3, H, W) → float32 (3, input_size, input_size)."""
        x: torch.Tensor = self.geometry(image).float().div_(255.0)
        if self.normalization == "per_image":
            return normalize_per_part(x)
        return (x - self.mean) / self.std


class FixedResize:
    """Resize to exactly ``size``×``size`` (the VOC crops of the NN protocol), then normalise."""

    def __init__(self, size: int = 227, normalization: Normalization = "per_image") -> None:
        self.resize = v2.Resize((size, size), antialias=True)
        self.inner = TransferTransform(size, size, train=False, normalization=normalization)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.inner(self.resize(image))
