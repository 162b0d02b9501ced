"""Augmentation of the u frames of one temporal-task sample, on whole-clip tensors."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from ssl_rl.data.host_to_device import device_constant
from ssl_rl.data.pretext.part_normalization import normalize_per_part
from ssl_rl.data.pretext.two_stage import (
    RawSample,
    TwoStageTransform,
    may_apply,
    stack_windows,
)

# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale.
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def _resize(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of (u, 3, H, W) frames.

    uint8 frames on the CPU stay uint8: torch's channels-last uint8 kernel is ~10x faster
    than the float one (the rounding is far below the coding noise); elsewhere float.
    """
    if tuple(clip.shape[-2:]) == size:
        return clip
    if clip.dtype == torch.uint8 and clip.device.type == "cpu":
        clip = clip.contiguous(memory_format=torch.channels_last)
    else:
        clip = clip.float()
    return F.interpolate(clip, size=size, mode="bilinear", antialias=True)


@dataclasses.dataclass(frozen=True)
class ClipTransform(TwoStageTransform):
    """(u, 3, H, W) uint8 frames → (u, 3, frame_size, frame_size) float32, order untouched.

    Train: resize the short side to ``resize_short``; one random ``crop`` box for the whole
    clip, moved independently per frame by up to ``jitter`` px (inside the image); resize to
    ``frame_size``; optional per-frame channel splitting (OPN: one random colour channel copied
    to all three) and, with probability ``gray_prob``, the whole clip turned grayscale; finally
    each frame standardised per channel by its own mean/std (as the jigsaw tiles). Eval
    (``train=False``): centre box, no jitter, no colour changes, deterministic. Two stages
    (:mod:`two_stage`): the geometry in uint8 in the worker (``sample``); the colour changes,
    float conversion and standardisation batched on the device (``finish``).
    Sizes [stand-in]; ``frame_size`` equals the jigsaw tile size by default [decision].
    """

    frame_size: int = 64
    resize_short: int = 128
    crop: int = 112
    jitter: int = 4
    channel_split: bool = False
    gray_prob: float = 0.0
    train: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.crop <= self.resize_short:
            raise ValueError(f"crop ({self.crop}) must be in 1..resize_short ({self.resize_short})")
        if self.frame_size <= 0 or self.jitter < 0:
            raise ValueError(
                f"frame_size ({self.frame_size}) must be > 0 and jitter ({self.jitter}) >= 0"
            )
        if not 0.0 <= self.gray_prob <= 1.0:
            raise ValueError(f"gray_prob ({self.gray_prob}) must be a probability")

    def prescaled(self) -> ClipTransform:
        """The same augmentation for frames stored at :attr:`prescaled_short_side`: the crop box
        is then ``frame_size`` px, so crop-then-resize becomes a crop (jitter scaled alike)."""
        scale = self.frame_size / self.crop
        return dataclasses.replace(
            self,
            resize_short=self.prescaled_short_side,
            crop=self.frame_size,
            jitter=round(self.jitter * scale),
        )

    @property
    def prescaled_short_side(self) -> int:
        """Short side at which a ``crop`` box at ``resize_short`` is ``frame_size`` px."""
        return round(self.resize_short * self.frame_size / self.crop)

    def sample(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> RawSample:
        """Worker stage: ``frames`` uint8 (u, f, f, 3) cropped (and resized) in uint8,
        ``channel`` (u,) the colour each frame keeps (-1: all), ``gray`` (bool).
        Draw order: crop box, per-frame jitter, channels, grayscale."""
        if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(
                f"expected uint8 frames of shape (u, 3, H, W), got {frames.dtype} "
                f"{tuple(frames.shape)}"
            )
        clip = self._resize_short_side(frames)
        clip = self._crop(clip, generator)
        return self.ship(_resize(clip, (self.frame_size, self.frame_size)), generator)

    def is_a_crop(self, height: int, width: int) -> bool:
        """Whether frames of this size need no resampling: ``sample`` only crops them."""
        return self._resized_size(height, width) == (height, width) and (
            self.crop == self.frame_size
        )

    def ship(self, clip: torch.Tensor, generator: torch.Generator | None = None) -> RawSample:
        """The worker stage's output for frames already cropped to (u, 3, f, f) uint8: the
        colour draws (after the crop's, as in ``sample``) and the pixels in rows."""
        num = clip.shape[0]
        channel = torch.full((num,), -1, dtype=torch.int8)
        if self.train and self.channel_split:
            channel = torch.randint(0, 3, (num,), generator=generator).to(torch.int8)
        gray = (
            self.train
            and self.gray_prob > 0
            and torch.rand((), generator=generator).item() < self.gray_prob
        )
        pixels = clip.permute(0, 2, 3, 1).contiguous()  # rows of pixels: a cheap copy
        return {"frames": pixels, "channel": channel, "gray": torch.from_numpy(np.array(gray))}

    def finish(self, batch: RawSample) -> torch.Tensor:
        """Device stage: float (B, u, 3, f, f), colour choices applied, each frame standardised
        per channel."""
        clip = batch["frames"].permute(0, 1, 4, 2, 3).float().div_(255.0)
        channel, gray = batch["channel"].long(), batch["gray"]
        if may_apply(channel >= 0):
            index = channel.clamp(min=0)[..., None, None, None].expand(
                *channel.shape, 1, *clip.shape[-2:]
            )
            kept = clip.gather(2, index).expand_as(clip)
            clip = torch.where((channel >= 0)[..., None, None, None], kept, clip)
        if may_apply(gray):
            weights = device_constant(_GRAY_WEIGHTS, clip.dtype, clip.device)
            luma = (clip * weights[:, None, None]).sum(dim=2, keepdim=True).expand_as(clip)
            clip = torch.where(gray[:, None, None, None, None], luma, clip)
        # Standardised in the frames' own layout (the summation order of the former pipeline),
        # handed on contiguous.
        return normalize_per_part(clip).contiguous()

    def _resized_size(self, height: int, width: int) -> tuple[int, int]:
        scale = self.resize_short / min(height, width)
        return max(self.crop, round(height * scale)), max(self.crop, round(width * scale))

    def _resize_short_side(self, clip: torch.Tensor) -> torch.Tensor:
        return _resize(clip, self._resized_size(*clip.shape[-2:]))

    def crop_corners(
        self, num: int, height: int, width: int, generator: torch.Generator | None
    ) -> tuple[list[int], list[int]]:
        """Top-left corners of the ``crop`` box in each of ``num`` frames of the resized size:
        one box for the clip, moved per frame by the jitter (train), or the centre (eval)."""
        max_top, max_left = height - self.crop, width - self.crop
        if not self.train:
            return [max_top // 2] * num, [max_left // 2] * num
        top = torch.randint(0, max_top + 1, (1,), generator=generator)
        left = torch.randint(0, max_left + 1, (1,), generator=generator)
        shift = torch.randint(-self.jitter, self.jitter + 1, (num, 2), generator=generator)
        tops = (top + shift[:, 0]).clamp(0, max_top).tolist()
        lefts = (left + shift[:, 1]).clamp(0, max_left).tolist()
        return tops, lefts

    def _crop(self, clip: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        num, _, height, width = clip.shape
        tops, lefts = self.crop_corners(num, height, width, generator)
        # u slices of pixel rows and one stack: many times faster than a per-pixel gather or
        # than copying channels-last frames into channels-first memory.
        return stack_windows(clip.permute(0, 2, 3, 1), tops, lefts, self.crop).permute(0, 3, 1, 2)
