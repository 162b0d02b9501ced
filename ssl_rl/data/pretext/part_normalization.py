"""Per-part standardisation shared by the jigsaw tiles and the video frames."""

from __future__ import annotations

import torch

_MIN_STD = 1e-5


def normalize_per_part(parts: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit (unbiased) std per part and channel of (..., C, H, W).

    Both tasks feed the shared trunk alike, and per-part brightness and contrast cannot hint
    at a part's position. Constant channels are only centred.
    """
    flat = parts.flatten(-2)
    centred = flat - flat.mean(dim=-1, keepdim=True)
    # Two passes by hand: torch.std on CPU is several times slower here.
    std = centred.square().sum(dim=-1, keepdim=True).div_(flat.shape[-1] - 1).sqrt_()
    std = torch.where(std < _MIN_STD, torch.ones_like(std), std)
    return centred.div_(std).view_as(parts)
