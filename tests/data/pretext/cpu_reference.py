"""The pretext transforms as they ran before the worker / device split: whole-sample, on the CPU.

Frozen copies of the single-stage pipelines (decode → resize → crop → colour → float →
normalise in one call), kept only as the reference the two-stage transforms must reproduce
for the same random draws.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ssl_rl.data.pretext.clip_transform import ClipTransform
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.pretext.part_normalization import normalize_per_part
from ssl_rl.data.pretext.rotation import RotationTransform

_LUMA = (0.299, 0.587, 0.114)


def _randint(high: int, size: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(high, size, generator=generator)


def reference_jigsaw(
    t: JigsawTransform, image: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    if min(image.shape[-2:]) != t.resize:
        image = TF.resize(image, [t.resize], antialias=True)
    height, width = image.shape[-2:]
    if t.train:
        top = _randint(height - t.crop + 1, (), generator).item()
        left = _randint(width - t.crop + 1, (), generator).item()
    else:
        top, left = (height - t.crop) // 2, (width - t.crop) // 2
    image = image[:, top : top + t.crop, left : left + t.crop]
    if t.train and torch.rand((), generator=generator).item() < t.gray_prob:
        weights = torch.tensor(_LUMA)[:, None, None]
        luma = (image.float() * weights).sum(dim=0, keepdim=True).round_().to(torch.uint8)
        image = luma.expand(3, -1, -1)
    cell, k = t.crop // t.grid, t.grid * t.grid
    slack = cell - t.tile_crop
    if t.train:
        offsets = _randint(slack + 1, (k, 1, 2), generator)
        if t.channel_shift > 0:
            shifts = _randint(2 * t.channel_shift + 1, (k, 3, 2), generator)
            offsets = (offsets + shifts - t.channel_shift).clamp_(0, slack)
        else:
            offsets = offsets.expand(k, 3, 2)
    else:
        offsets = torch.full((k, 3, 2), slack // 2, dtype=torch.long)
    cells = torch.arange(k)
    tops = (cells // t.grid * cell)[:, None] + offsets[..., 0]
    lefts = (cells % t.grid * cell)[:, None] + offsets[..., 1]
    windows = image.unfold(1, t.tile_crop, 1).unfold(2, t.tile_crop, 1)
    tiles = windows[torch.arange(3)[None, :], tops, lefts].float().div_(255.0)
    if t.tile_size != t.tile_crop:
        tiles = F.interpolate(
            tiles, size=(t.tile_size, t.tile_size), mode="bilinear", antialias=True
        )
    return normalize_per_part(tiles)


def _resize_clip(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(clip.shape[-2:]) == size:
        return clip
    if clip.dtype == torch.uint8 and clip.device.type == "cpu":
        clip = clip.contiguous(memory_format=torch.channels_last)
    else:
        clip = clip.float()
    return F.interpolate(clip, size=size, mode="bilinear", antialias=True)


def reference_clip(
    t: ClipTransform, frames: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    height, width = frames.shape[-2:]
    scale = t.resize_short / min(height, width)
    size = (max(t.crop, round(height * scale)), max(t.crop, round(width * scale)))
    clip = _resize_clip(frames, size)
    num, _, height, width = clip.shape
    max_top, max_left = height - t.crop, width - t.crop
    if t.train:
        top = torch.randint(0, max_top + 1, (1,), generator=generator)
        left = torch.randint(0, max_left + 1, (1,), generator=generator)
        shift = torch.randint(-t.jitter, t.jitter + 1, (num, 2), generator=generator)
        tops = (top + shift[:, 0]).clamp(0, max_top).tolist()
        lefts = (left + shift[:, 1]).clamp(0, max_left).tolist()
    else:
        tops, lefts = [max_top // 2] * num, [max_left // 2] * num
    clip = torch.stack(
        [f[:, y : y + t.crop, x : x + t.crop] for f, y, x in zip(clip, tops, lefts, strict=True)]
    )
    clip = _resize_clip(clip, (t.frame_size, t.frame_size)).float().div_(255.0)
    if t.train and t.channel_split:
        channel = torch.randint(0, 3, (clip.shape[0],), generator=generator)
        kept = clip[torch.arange(clip.shape[0]), channel]
        clip = kept[:, None].expand_as(clip).contiguous()
    if t.train and t.gray_prob > 0 and torch.rand((), generator=generator).item() < t.gray_prob:
        weights = torch.tensor(_LUMA, dtype=clip.dtype)
        clip = (clip * weights[:, None, None]).sum(dim=1, keepdim=True).expand_as(clip)
    return normalize_per_part(clip.contiguous())


def reference_rotation(
    t: RotationTransform, image: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    image = TF.resize(image, [t.resize], antialias=True)
    height, width = image.shape[-2:]
    if t.train:
        top = int(torch.randint(height - t.crop + 1, (), generator=generator))
        left = int(torch.randint(width - t.crop + 1, (), generator=generator))
    else:
        top, left = (height - t.crop) // 2, (width - t.crop) // 2
    view = image[:, top : top + t.crop, left : left + t.crop]
    if t.train and bool(torch.rand((), generator=generator) < 0.5):
        view = view.flip(-1)
    view = view.float().div_(255.0)
    if t.size != t.crop:
        view = TF.resize(view, [t.size, t.size], antialias=True)
    return normalize_per_part(view.unsqueeze(0))
