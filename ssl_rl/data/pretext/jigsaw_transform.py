"""Image → unpermuted jigsaw tiles, the preprocessing of the spatial task.

Pipeline [stand-in, Noroozi & Favaro 2016 / JigsawPuzzlePytorch], all on tensors:

1. resize the shorter side to ``resize`` (bilinear, antialiased);
2. crop ``crop`` × ``crop`` (random in training, centre otherwise);
3. training only: with probability ``gray_prob`` the whole image becomes grayscale
   (ITU-R 601 luma, as PIL's ``convert("L")``);
4. split into ``grid`` × ``grid`` cells of ``crop // grid`` px and take a
   ``tile_crop`` px crop inside each cell (random in training, centre otherwise);
   the gap between tiles removes edge-continuity shortcuts;
5. training only: each colour channel of each tile is shifted by up to
   ``channel_shift`` px in x and y independently (Noroozi & Favaro's "spatially
   jitter the colour channels by 0, ±1, ±2 px" against chromatic-aberration
   shortcuts), clamped so the tile stays inside its cell;
6. resize each tile to ``tile_size`` if it differs from ``tile_crop``;
7. normalise each tile per channel by its own mean and std (as JigsawPuzzlePytorch;
   a channel with zero std is only centred).

An additive or multiplicative per-channel colour jitter (JigsawPuzzlePytorch's
``rgb_jittering``) is deliberately not offered: step 7 removes exactly such
per-channel offsets and scales, so it would have no effect.

Two stages (:mod:`two_stage`): the loader worker does steps 1, 2 and the gather of step 4–5's
pixels (one window per tile, wide enough for every channel shift) in uint8 and draws all random
numbers; grayscale (applied at each channel's shifted position, which equals converting the
image first), the shifts' per-channel crop, steps 6–7 and the float conversion run batched on
the device. Both gathers index strided views of all windows (``unfold``); no per-tile loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ssl_rl.data.host_to_device import device_constant
from ssl_rl.data.pretext.part_normalization import normalize_per_part
from ssl_rl.data.pretext.two_stage import (
    RawSample,
    TwoStageTransform,
    may_apply,
    reads_free,
    stack_windows,
)

# ITU-R 601-2 luma weights, the ones PIL uses for RGB → L.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class JigsawTransform(TwoStageTransform):
    """uint8 ``(3, H, W)`` image → float ``(grid², 3, tile_size, tile_size)`` in two stages
    (:mod:`two_stage`): crops and tile gather in ``sample``, steps 3, 6, 7 in ``finish``."""

    grid: int = 3
    resize: int = 256
    crop: int = 255
    tile_crop: int = 64
    tile_size: int = 64
    gray_prob: float = 0.3
    channel_shift: int = 2
    train: bool = True

    def __post_init__(self) -> None:
        if self.grid < 2:
            raise ValueError(f"grid must be at least 2, got {self.grid}")
        if self.tile_crop < 1 or self.tile_size < 1:
            raise ValueError(
                f"tile_crop and tile_size must be positive, got {self.tile_crop}, {self.tile_size}"
            )
        if self.crop < self.grid * self.tile_crop:
            raise ValueError(
                f"crop ({self.crop}) must be at least grid * tile_crop "
                f"({self.grid} * {self.tile_crop} = {self.grid * self.tile_crop}) so that each "
                f"cell of crop // grid px holds a tile_crop px tile"
            )
        if self.resize < self.crop:
            raise ValueError(f"resize ({self.resize}) must be at least crop ({self.crop})")
        if not 0.0 <= self.gray_prob <= 1.0:
            raise ValueError(f"gray_prob must be in [0, 1], got {self.gray_prob}")
        if self.channel_shift < 0:
            raise ValueError(f"channel_shift must be non-negative, got {self.channel_shift}")

    @property
    def cell(self) -> int:
        """Side of one grid cell in pixels."""
        return self.crop // self.grid

    @property
    def num_tiles(self) -> int:
        return self.grid * self.grid

    @property
    def window(self) -> int:
        """Side of the uint8 window shipped per tile: the tile plus the channels' shift range."""
        return self.tile_crop + self._shift_span

    @property
    def _shift_span(self) -> int:
        # Positions a tile channel can take after the clamped shift, around its tile offset.
        if not self.train:
            return 0
        return min(2 * self.channel_shift, self.cell - self.tile_crop)

    def sample(self, image: torch.Tensor, generator: torch.Generator | None = None) -> RawSample:
        """Worker stage: ``windows`` uint8 (grid², w, w, 3), each tile's pixels with room for the
        channel shifts; ``offsets`` (grid², 3, 2) of each channel's tile inside its window;
        ``gray`` (bool). Draw order: crop, grayscale, tile offsets, channel shifts."""
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(
                f"expected a uint8 (3, H, W) image, got {tuple(image.shape)} {image.dtype}"
            )
        image = self._resize_shorter_side(image)
        height, width = image.shape[-2:]
        draws = self.draw(height, width, generator)
        return self.gather(image, draws)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after step 1, as torchvision's resize computes it."""
        if min(height, width) == self.resize:
            return height, width
        if height <= width:
            return self.resize, int(self.resize * width / height)
        return int(self.resize * height / width), self.resize

    def draw(self, height: int, width: int, generator: torch.Generator | None) -> PuzzleDraws:
        """Every random number of one puzzle from an image of this (resized) size."""
        if self.train:
            top = int(_randint(height - self.crop + 1, (), generator).item())
            left = int(_randint(width - self.crop + 1, (), generator).item())
        else:
            top, left = (height - self.crop) // 2, (width - self.crop) // 2
        # Drawn even when gray_prob is 0, so the crops do not depend on gray_prob.
        gray = self.train and _uniform(generator) < self.gray_prob
        tops, lefts, offsets = self._draw_windows(generator)
        return PuzzleDraws(top, left, gray, tops, lefts, offsets)

    def gather(self, image: torch.Tensor, draws: PuzzleDraws) -> RawSample:
        """The worker stage's output for a resized uint8 (3, H, W) image and its draws."""
        windows = self.windows(image, draws.top, draws.left, draws.tops, draws.lefts)
        gray = torch.from_numpy(np.array(draws.gray))
        return {"windows": windows, "offsets": torch.from_numpy(draws.offsets), "gray": gray}

    def windows(
        self, image: torch.Tensor, top: int, left: int, tops: list[int], lefts: list[int]
    ) -> torch.Tensor:
        """The tile windows (grid², w, w, 3) at (tops, lefts) of the crop at (top, left)."""
        crop = image[:, top : top + self.crop, left : left + self.crop]
        return stack_windows(crop.permute(1, 2, 0), tops, lefts, self.window)

    def finish(self, batch: RawSample) -> torch.Tensor:
        """Device stage: float tiles (B, grid², 3, tile_size, tile_size), standardised per tile
        and channel; a gray sample's channel c is the luma at channel c's shifted position."""
        windows = batch["windows"]  # (B, K, w, w, 3)
        offsets = batch["offsets"].to(windows.device).long()
        gray = batch["gray"].to(windows.device)
        if may_apply(gray):
            windows = _gray_windows(windows, gray)
        windows = windows.permute(0, 1, 4, 2, 3)  # (B, K, 3, w, w)
        b, k = windows.shape[:2]
        size = self.tile_crop
        # (B, K, 3, Y, X, tc, tc): every tile-sized crop of every window, a view.
        crops = windows.unfold(3, size, 1).unfold(4, size, 1)
        bi = torch.arange(b, device=windows.device)[:, None, None]
        ki = torch.arange(k, device=windows.device)[None, :, None]
        ci = torch.arange(3, device=windows.device)[None, None, :]
        tiles = crops[bi, ki, ci, offsets[..., 0], offsets[..., 1]]  # (B, K, 3, tc, tc)
        tiles = tiles.float().div_(255.0)
        if self.tile_size != self.tile_crop:
            tiles = F.interpolate(
                tiles.flatten(0, 1),
                size=(self.tile_size, self.tile_size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            ).unflatten(0, (b, k))
        return normalize_per_part(tiles)

    def _resize_shorter_side(self, image: torch.Tensor) -> torch.Tensor:
        if min(image.shape[-2:]) == self.resize:
            return image
        resized: torch.Tensor = TF.resize(image, [self.resize], antialias=True)
        return resized

    def _draw_windows(
        self, generator: torch.Generator | None
    ) -> tuple[list[int], list[int], np.ndarray]:
        """Corners of one window per tile in the crop (room for the channel shifts) and each
        channel's tile offset inside its window, (grid², 3, 2) uint8."""
        slack = self.cell - self.tile_crop
        span = self._shift_span
        # Draws from the torch generator; index arithmetic in numpy (a few µs, not ~20 ops).
        if self.train:
            offsets = _randint(slack + 1, (self.num_tiles, 1, 2), generator).numpy()
            shift = self.channel_shift
            if shift > 0:
                shifts = _randint(2 * shift + 1, (self.num_tiles, 3, 2), generator).numpy()
                positions = np.clip(offsets + shifts - shift, 0, slack)
            else:
                positions = np.broadcast_to(offsets, (self.num_tiles, 3, 2))
            # Covers every clamped position offset ± shift can reach inside the cell.
            starts = np.clip(offsets - shift, 0, slack - span)
        else:
            positions = np.full((self.num_tiles, 3, 2), slack // 2)
            starts = positions[:, :1]
        cells = np.arange(self.num_tiles)
        tops = (cells // self.grid * self.cell + starts[:, 0, 0]).tolist()
        lefts = (cells % self.grid * self.cell + starts[:, 0, 1]).tolist()
        return tops, lefts, (positions - starts).astype(np.uint8)


@dataclass(frozen=True)
class PuzzleDraws:
    """The random numbers of one puzzle: crop corner, grayscale, tile windows, channel offsets."""

    top: int
    left: int
    gray: bool
    tops: list[int]
    lefts: list[int]
    offsets: np.ndarray


def _gray_windows(windows: torch.Tensor, gray: torch.Tensor) -> torch.Tensor:
    """(B, K, w, w, 3) uint8 windows with a gray puzzle's pixels replaced by their rounded luma in
    all three channels. Each channel's tile then crops it at its own shifted position: the luma
    at that position, as converting the whole image first gives. On a CPU only the gray puzzles
    are converted; elsewhere all, masked (see ``may_apply``): the same pixels."""
    if reads_free(gray.device):
        rows = gray.nonzero().squeeze(1)
        windows = windows.clone()
        luma = _luma(windows[rows].float(), dim=-1).round_().to(torch.uint8)
        windows[rows] = luma[..., None].expand(*luma.shape, 3)
        return windows
    luma = _luma(windows.float(), dim=-1).round_().to(torch.uint8)[..., None]
    return torch.where(gray[:, None, None, None, None], luma, windows)


def _luma(colours: torch.Tensor, dim: int) -> torch.Tensor:
    """ITU-R 601 luma of the 3 colours along ``dim``, one float32 operation at a time in a fixed
    order, so every device rounds alike: a reduction kernel may sum in another order or fuse a
    multiply-add, and a luma near .5 then rounds to another gray level (a GPU did, on 1 pixel
    in a few thousand). Equal to ``(colours * weights).sum(dim)`` on the CPU for every RGB."""
    weights = device_constant(_LUMA, torch.float32, colours.device)
    r, g, b = colours.unbind(dim)
    return r * weights[0] + g * weights[1] + b * weights[2]


def _randint(high: int, size: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(high, size, generator=generator)


def _uniform(generator: torch.Generator | None) -> float:
    return torch.rand((), generator=generator).item()
