"""Image rotation as a pretext task (RotNet, Gidaris et al. 2018): which of 0/90/180/270°?

The rotation self-supervision the paper's future work points to, as a third task defined by
config (conf/task/rotation.yaml): the data side gives one unrotated square view per image, the
classes rotate it on the device, so the policy, the samplers and validation treat the four
rotations exactly like a task's permutations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF
from torch import nn

from ssl_rl.data.pretext.part_normalization import normalize_per_part
from ssl_rl.data.pretext.two_stage import RawSample, TwoStageTransform


class Rotations(nn.Module):
    """The classes: class k rotates a sample's parts by k · 90° (counter-clockwise)."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        if num_classes not in (2, 4):
            raise ValueError(
                f"rotations by multiples of 90° give 2 or 4 classes, got {num_classes}"
            )
        self.step = 4 // num_classes  # 2 classes: 0° and 180°
        self._num_classes = num_classes

    @property
    def num_classes(self) -> int:
        return self._num_classes

    def transform(
        self, parts: torch.Tensor, idx: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``parts`` (B, n, C, s, s), each sample rotated by its class ``idx`` (B,)."""
        if parts.shape[-1] != parts.shape[-2]:
            raise ValueError(f"rotation needs square parts, got {tuple(parts.shape[-2:])}")
        out = torch.empty_like(parts)
        for k in range(self._num_classes):
            chosen = idx == k
            out[chosen] = torch.rot90(parts[chosen], k * self.step, dims=(-2, -1))
        return out

    def extra_repr(self) -> str:
        return f"num_classes={self._num_classes}"


@dataclass(frozen=True)
class RotationTransform(TwoStageTransform):
    """uint8 (3, H, W) image → (1, 3, size, size) float view, standardised like a jigsaw tile.

    Train: the short side resized to ``resize``, a random ``crop`` square, a random horizontal
    flip (it keeps "up" up), resized to ``size``. Eval: the centre square, no flip.
    """

    resize: int = 256
    crop: int = 224
    size: int = 64
    train: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.crop <= self.resize:
            raise ValueError(f"crop ({self.crop}) must be in 1..resize ({self.resize})")

    def sample(self, image: torch.Tensor, generator: torch.Generator | None = None) -> RawSample:
        """Worker stage: ``view`` uint8 (1, crop, crop, 3), cropped and flipped."""
        image = TF.resize(image, [self.resize], antialias=True)
        height, width = image.shape[-2:]
        if self.train:
            top = int(torch.randint(height - self.crop + 1, (), generator=generator))
            left = int(torch.randint(width - self.crop + 1, (), generator=generator))
        else:
            top, left = (height - self.crop) // 2, (width - self.crop) // 2
        view = image[:, top : top + self.crop, left : left + self.crop]
        if self.train and bool(torch.rand((), generator=generator) < 0.5):
            view = view.flip(-1)
        return {"view": view.permute(1, 2, 0).unsqueeze(0).contiguous()}

    def finish(self, batch: RawSample) -> torch.Tensor:
        """Device stage: float (B, 1, 3, size, size), standardised per channel."""
        view = batch["view"].permute(0, 1, 4, 2, 3).float().div_(255.0)
        if self.size != self.crop:
            view = TF.resize(view.flatten(0, 1), [self.size, self.size], antialias=True)
            view = view.unflatten(0, batch["view"].shape[:2])
        return normalize_per_part(view)
