"""Reader for the ImageFolder layout used by ImageNet: ``<root>/<class>/<image>``.

Scanning rules:

- Classes are the sub-folders of ``root``, sorted by name, so class ``i`` is the
  ``i``-th sorted wnid (the standard ImageNet label mapping).
- Images are the files directly inside a class folder (not recursive: pointing
  ``root`` at the ImageNet root instead of ``root/train`` must fail loudly instead
  of yielding two classes ``train`` and ``val``) with extension .jpeg, .jpg, .png,
  .bmp or .webp, case-insensitive, sorted by name.
- Hidden entries (name starting with ``.``, e.g. macOS ``._n01440764_1.JPEG``
  resource forks or ``.ipynb_checkpoints``) are ignored.
- An empty class folder is kept with 0 samples and a logged warning, so the
  labels of all other classes stay the same as on a complete copy.
- No class folder or no image at all raises :class:`DatasetError`.

Loading (:func:`load_rgb`) accepts everything ImageNet contains: CMYK and
grayscale JPEGs and a PNG named ``.JPEG`` all come back as 3-channel RGB.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepared.manifest import canonical_command, check_prepared

logger = logging.getLogger(__name__)

_RGB = ImageReadMode.RGB

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpeg", ".jpg", ".png", ".bmp", ".webp"})


class CorruptImageError(DatasetError):
    """An image file exists but cannot be decoded (truncated, not an image, ...)."""


def is_image_file(name: str) -> bool:
    """True for a visible file name with one of the supported image extensions."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class ImageFolderIndex:
    """Classes and ``(path, label)`` samples of one ImageFolder split, in a fixed order."""

    root: Path
    classes: list[str]
    samples: list[tuple[Path, int]]

    @classmethod
    def scan(
        cls, root: Path, config_key: str = "tasks.spatial.reader.train_root"
    ) -> ImageFolderIndex:
        """List ``root/<class>/<image>``; errors name ``root`` and the config key to fix."""
        root = Path(root).expanduser()
        if not root.is_dir():
            what = "is not a directory" if root.exists() else "does not exist"
            raise DatasetError(
                f"Image folder {root} {what}. Set `{config_key}` to a folder laid out as "
                f"<root>/<class>/<image>.JPEG (for ImageNet: the `train` folder)."
            )
        classes = sorted(
            entry.name
            for entry in os.scandir(root)
            if entry.is_dir() and not entry.name.startswith(".")
        )
        if not classes:
            raise DatasetError(
                f"Image folder {root} has no class sub-folders. Set `{config_key}` to a folder "
                f"laid out as <root>/<class>/<image>.JPEG (for ImageNet: the `train` folder)."
            )
        samples: list[tuple[Path, int]] = []
        empty: list[str] = []
        for label, name in enumerate(classes):
            class_dir = root / name
            files = sorted(
                entry.name
                for entry in os.scandir(class_dir)
                if is_image_file(entry.name) and entry.is_file()
            )
            if not files:
                empty.append(name)
            samples.extend((class_dir / file, label) for file in files)
        if not samples:
            raise DatasetError(
                f"Image folder {root} has {len(classes)} class folders but no images "
                f"(extensions {sorted(IMAGE_EXTENSIONS)}) directly inside them. Set "
                f"`{config_key}` to the folder whose sub-folders hold the images"
                f"{_nested_hint(root, classes)}."
            )
        for name in empty:
            logger.warning(
                "Class folder %s has no images; class %r is kept with 0 samples so the "
                "other labels do not shift.",
                root / name,
                name,
            )
        return cls(root=root, classes=classes, samples=samples)

    @property
    def paths(self) -> list[Path]:
        """The image paths, in sample order."""
        return [path for path, _ in self.samples]

    @property
    def labels(self) -> list[int]:
        """The class labels, in sample order."""
        return [label for _, label in self.samples]


def _nested_hint(root: Path, classes: list[str]) -> str:
    """Suggest e.g. ``root/train`` when the images sit one level deeper than expected."""
    for name in classes:
        sub = root / name
        if any(entry.is_dir() for entry in os.scandir(sub)):
            return f" (e.g. {sub})"
    return ""


def load_rgb(path: Path, min_size: int | None = None) -> torch.Tensor:
    """Decode an image file as a uint8 ``(3, H, W)`` RGB tensor (channels-last memory).

    ``min_size``: if given, JPEGs at least twice that size are decoded at the smallest libjpeg
    scale (1/2, 1/4, 1/8) whose shorter side is still at least ``min_size`` pixels, which is
    much faster for large photos that are resized afterwards anyway. Other RGB or grayscale
    JPEGs (e.g. a prepared mirror) go through torchvision's libjpeg-turbo decoder: the same
    pixels as PIL's, in half the time. Raises :class:`CorruptImageError` naming the file when
    it cannot be decoded.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        raise DatasetError(
            f"Image file {path} not found (was the dataset moved after it was scanned?)."
        ) from error
    if data[:3] == _JPEG_MAGIC:
        decoded = _decode_plain_jpeg(data, min_size)
        if decoded is not None:
            return decoded
    try:
        with Image.open(io.BytesIO(data)) as image:
            if min_size is not None and image.format == "JPEG":
                image.draft("RGB", (min_size, min_size))
            rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise CorruptImageError(f"Cannot decode image file {path}: {error}") from error
    array = np.asarray(rgb)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


_JPEG_MAGIC = b"\xff\xd8\xff"


def _decode_plain_jpeg(data: bytes, min_size: int | None) -> torch.Tensor | None:
    """torchvision's decode of a 1- or 3-component JPEG that needs no draft scaling; None for
    anything else (CMYK, large photos, undecodable bytes: PIL decides, and names errors)."""
    frame = jpeg_frame_header(data)
    if frame is None or frame[2] not in (1, 3):
        return None
    height, width, _ = frame
    if min_size is not None and min(height, width) >= 2 * min_size:
        return None
    try:
        image: torch.Tensor = decode_jpeg(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=_RGB
        )
    except RuntimeError:
        return None
    return image.permute(1, 2, 0).contiguous().permute(2, 0, 1)


# Start-of-frame markers of the DCT-based JPEG processes (not DHT C4, JPG C8, DAC CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_frame_header(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, components) from a JPEG's start-of-frame segment; None if not found.

    A few bytes read by hand: PIL's header parsing costs more than a third of decoding a
    256 px image."""
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _SOF_MARKERS:
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            return height, width, data[position + 9]
        position += 2 + length
    return None


@dataclass(frozen=True)
class ImageFolderSplits:
    """A task's reader for an ImageFolder release (ImageNet): ``train_root`` and ``val_root``.

    ``prepared_train_root`` / ``prepared_val_root``: pre-resized mirrors
    (``python -m ssl_rl.data.prepare_images``) read instead of the originals when they exist; a
    missing mirror falls back to the original with a log line saying how to make it, a mirror
    of another source, another format version, an unfinished one or (with
    ``required_short_side``, the transform's resize) another short side is an error.
    """

    train_root: str
    val_root: str
    prepared_train_root: str | None = None
    prepared_val_root: str | None = None
    required_short_side: int | None = None

    def samples(self, config_key: str) -> tuple[list[Path], list[Path]]:
        """Training and validation image paths; errors name ``<config_key>.train_root`` etc."""
        train = self._scan(self.train_root, self.prepared_train_root, config_key, "train")
        val = self._scan(self.val_root, self.prepared_val_root, config_key, "val")
        return train, val

    def _scan(self, root: str, prepared: str | None, config_key: str, split: str) -> list[Path]:
        original, key = Path(root).expanduser(), f"{config_key}.{split}_root"
        if prepared is None:
            return ImageFolderIndex.scan(original, config_key=key).paths
        mirror, mirror_key = Path(prepared).expanduser(), f"{config_key}.prepared_{split}_root"
        if not mirror.exists():
            settings = {"short_side": self.required_short_side or 256}
            logger.info(
                "No prepared mirror at %s (`%s`): reading the original images in %s. Make it "
                "once with: %s",
                mirror,
                mirror_key,
                original,
                canonical_command("images", mirror, settings, original.resolve()),
            )
            return ImageFolderIndex.scan(original, config_key=key).paths
        required = {}
        if self.required_short_side is not None:
            required["short_side"] = self.required_short_side
        check_prepared(mirror, "images", required, mirror_key, source=original)
        return ImageFolderIndex.scan(mirror, config_key=mirror_key).paths
