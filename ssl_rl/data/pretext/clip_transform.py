"""Augmentation of the u frames of one temporal-task sample, on whole-clip tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssl_rl.data.pretext.part_normalization import normalize_per_part

# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale.
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


# Below this std (intensities in [0, 1]) a frame channel counts as constant and is only centred.


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


class ClipTransform:
    """(u, 3, H, W) uint8 frames → (u, 3, frame_size, frame_size) float32, order untouched.

    Train: resize the short side to ``resize_short``; one random ``crop`` box for the whole clip,
    moved independently per frame by up to ``jitter`` px (inside the image); resize to
    ``frame_size``; optional per-frame channel splitting (OPN: one random colour channel copied to
    all three) and, with probability ``gray_prob``, the whole clip turned grayscale; finally each
    frame standardised per channel by its own mean/std (as the jigsaw tiles). Eval
    (``train=False``): centre box, no jitter, no colour changes, deterministic.
    Sizes [stand-in]; ``frame_size`` equals the jigsaw tile size by default [decision].
    """

    def __init__(
        self,
        frame_size: int = 64,
        resize_short: int = 128,
        crop: int = 112,
        jitter: int = 4,
        channel_split: bool = False,
        gray_prob: float = 0.0,
        train: bool = True,
    ) -> None:
        if not 0 < crop <= resize_short:
            raise ValueError(f"crop ({crop}) must be in 1..resize_short ({resize_short})")
        if frame_size <= 0 or jitter < 0:
            raise ValueError(f"frame_size ({frame_size}) must be > 0 and jitter ({jitter}) >= 0")
        if not 0.0 <= gray_prob <= 1.0:
            raise ValueError(f"gray_prob ({gray_prob}) must be a probability")
        self.frame_size = frame_size
        self.resize_short = resize_short
        self.crop = crop
        self.jitter = jitter
        self.channel_split = channel_split
        self.gray_prob = gray_prob
        self.train = train

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def __call__(
        self, frames: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(
                f"expected uint8 frames of shape (u, 3, H, W), got {frames.dtype} "
                f"{tuple(frames.shape)}"
            )
        clip = self._resize_short_side(frames)
        clip = self._crop(clip, generator)
        clip = _resize(clip, (self.frame_size, self.frame_size)).float().div_(255.0)
        if self.train and self.channel_split:
            clip = self._split_channels(clip, generator)
        if self.train and self.gray_prob > 0:
            clip = self._maybe_gray(clip, generator)
        return normalize_per_part(clip)

    def _resize_short_side(self, clip: torch.Tensor) -> torch.Tensor:
        height, width = clip.shape[-2:]
        scale = self.resize_short / min(height, width)
        size = (max(self.crop, round(height * scale)), max(self.crop, round(width * scale)))
        return _resize(clip, size)

    def _crop(self, clip: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        num, _, height, width = clip.shape
        max_top, max_left = height - self.crop, width - self.crop
        if not self.train:
            top, left = max_top // 2, max_left // 2
            return clip[..., top : top + self.crop, left : left + self.crop]
        top = torch.randint(0, max_top + 1, (1,), generator=generator)
        left = torch.randint(0, max_left + 1, (1,), generator=generator)
        shift = torch.randint(-self.jitter, self.jitter + 1, (num, 2), generator=generator)
        tops = (top + shift[:, 0]).clamp(0, max_top).tolist()
        lefts = (left + shift[:, 1]).clamp(0, max_left).tolist()
        # u slices and one stack: 6x faster than one gather with per-pixel indices.
        return torch.stack(
            [
                frame[:, y : y + self.crop, x : x + self.crop]
                for frame, y, x in zip(clip, tops, lefts, strict=True)
            ]
        )

    @staticmethod
    def _split_channels(clip: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        channel = torch.randint(0, 3, (clip.shape[0],), generator=generator).to(clip.device)
        kept = clip[torch.arange(clip.shape[0], device=clip.device), channel]  # (u, H, W)
        return kept[:, None].expand_as(clip).contiguous()

    def _maybe_gray(self, clip: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if torch.rand((), generator=generator).item() >= self.gray_prob:
            return clip
        weights = torch.tensor(_GRAY_WEIGHTS, dtype=clip.dtype, device=clip.device)
        gray = (clip * weights[:, None, None]).sum(dim=1, keepdim=True)
        return gray.expand_as(clip).contiguous()
