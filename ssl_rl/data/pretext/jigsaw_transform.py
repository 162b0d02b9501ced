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

Steps 4–5 are one gather for all tiles and channels from a strided view of all
windows (``unfold``); no per-tile Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ssl_rl.data.pretext.part_normalization import normalize_per_part

# ITU-R 601-2 luma weights, the ones PIL uses for RGB → L.
_LUMA = (0.299, 0.587, 0.114)
# Below this std (intensities in [0, 1]) a tile channel counts as constant.


@dataclass(frozen=True)
class JigsawTransform:
    """Callable turning a uint8 ``(3, H, W)`` image into ``(grid², 3, tile_size, tile_size)``."""

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

    def __call__(
        self, image: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Tiles in row-major cell order, unpermuted; randomness only from ``generator``."""
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(
                f"expected a uint8 (3, H, W) image, got {tuple(image.shape)} {image.dtype}"
            )
        image = self._resize_shorter_side(image)
        image = self._crop(image, generator)
        # Drawn even when gray_prob is 0, so the crops do not depend on gray_prob.
        if self.train and _uniform(generator) < self.gray_prob:
            image = _to_gray(image)
        tiles = self._gather_tiles(image, generator).float().div_(255.0)
        if self.tile_size != self.tile_crop:
            tiles = F.interpolate(
                tiles,
                size=(self.tile_size, self.tile_size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        return normalize_per_part(tiles)

    def _resize_shorter_side(self, image: torch.Tensor) -> torch.Tensor:
        if min(image.shape[-2:]) == self.resize:
            return image
        return TF.resize(image, [self.resize], antialias=True)

    def _crop(self, image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        height, width = image.shape[-2:]
        if self.train:
            top = _randint(height - self.crop + 1, (), generator).item()
            left = _randint(width - self.crop + 1, (), generator).item()
        else:
            top, left = (height - self.crop) // 2, (width - self.crop) // 2
        return image[:, top : top + self.crop, left : left + self.crop]

    def _gather_tiles(self, image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """All tiles of all channels in one gather from a window view → (grid², 3, tc, tc)."""
        slack = self.cell - self.tile_crop
        if self.train:
            offsets = _randint(slack + 1, (self.num_tiles, 1, 2), generator)
            if self.channel_shift > 0:
                shifts = _randint(2 * self.channel_shift + 1, (self.num_tiles, 3, 2), generator)
                offsets = (offsets + shifts - self.channel_shift).clamp_(0, slack)
            else:
                offsets = offsets.expand(self.num_tiles, 3, 2)
        else:
            offsets = torch.full((self.num_tiles, 3, 2), slack // 2, dtype=torch.long)
        cells = torch.arange(self.num_tiles)
        top = (cells // self.grid * self.cell)[:, None] + offsets[..., 0]  # (K, 3)
        left = (cells % self.grid * self.cell)[:, None] + offsets[..., 1]
        channels = torch.arange(3)[None, :]
        # (3, Y, X, tc, tc): every tile_crop window, a view without copying.
        windows = image.unfold(1, self.tile_crop, 1).unfold(2, self.tile_crop, 1)
        device = image.device
        return windows[channels.to(device), top.to(device), left.to(device)]


def _randint(high: int, size: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(high, size, generator=generator)


def _uniform(generator: torch.Generator | None) -> float:
    return torch.rand((), generator=generator).item()


def _to_gray(image: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(_LUMA, device=image.device)[:, None, None]
    luma = (image.float() * weights).sum(dim=0, keepdim=True).round_().to(torch.uint8)
    return luma.expand(3, -1, -1)
