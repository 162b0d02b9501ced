"""Reader for Pascal VOC 2012 semantic segmentation as released (``VOCdevkit/VOC2012``).

- ``ImageSets/Segmentation/<split>.txt`` lists the image ids of a split (``train``, ``val``,
  ``trainval``), one per line, any line ending, optional BOM.
- ``JPEGImages/<id>.jpg`` is the image, ``SegmentationClass/<id>.png`` its label map: a
  palette ("P" mode) PNG whose pixel values are class indices, 0 background, 1–20 the VOC
  classes in canonical order (:data:`~ssl_rl.data.readers.voc07.VOC_CLASSES`), 255 "void"
  (object borders and ambiguous regions; ignored in training and evaluation). A grayscale
  ("L") PNG of indices is accepted too; a colour-rendered PNG is refused (its RGB colours are
  not indices).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.list_files import read_image_ids
from ssl_rl.data.readers.voc07 import VOC_CLASSES
from ssl_rl.data.readers.voc_devkit import ListedFiles, require_folders

SEG_CLASSES: tuple[str, ...] = ("background", *VOC_CLASSES)  # label i is SEG_CLASSES[i]
NUM_SEG_CLASSES = len(SEG_CLASSES)  # 21
IGNORE_INDEX = 255
SEG_SPLITS = ("train", "val", "trainval")
VOC12SegSplit = Literal["train", "val", "trainval"]
_FOLDERS = ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation")


def load_label_map(path: Path | str) -> torch.Tensor:
    """A ``SegmentationClass`` PNG as an int64 (H, W) tensor of class indices (255 = void)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            mode = image.mode
            array = np.asarray(image) if mode in ("P", "L") else None
    except FileNotFoundError:
        raise DatasetError(f"label map {path} does not exist") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"cannot decode label map {path}: {error}") from None
    if array is None:
        raise DatasetError(
            f"{path} is a {mode!r} image; VOC2012 SegmentationClass PNGs are palette ('P') "
            f"images whose pixel values are class indices. Use the PNGs of the release (not "
            f"colour renderings) or convert the colours to indices 0-20 and 255"
        )
    bad = np.setdiff1d(np.unique(array), [*range(NUM_SEG_CLASSES), IGNORE_INDEX])
    if bad.size:
        raise DatasetError(
            f"{path} holds pixel values {bad[:5].tolist()}; VOC2012 label maps use 0 "
            f"(background), 1-20 (the VOC classes) and 255 (void)"
        )
    return torch.from_numpy(array.astype(np.int64))


class VOC12SegIndex:
    """Image and label-map paths of one VOC 2012 segmentation split, in the split file's order.

    ``root`` is the ``VOC2012`` folder; ``config_prefix`` names the config key in errors.
    """

    def __init__(
        self,
        root: Path | str,
        split: VOC12SegSplit = "train",
        config_prefix: str = "datasets.voc12",
    ) -> None:
        if split not in SEG_SPLITS:
            raise DatasetError(
                f"VOC2012 segmentation split must be one of {SEG_SPLITS}, got {split!r}"
            )
        self.root = Path(root).expanduser()
        self.split = split
        require_folders(self.root, _FOLDERS, "VOC2012", f"{config_prefix}.root")
        self.split_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        self.ids = self._read_ids(config_prefix)
        files = ListedFiles(
            self.root,
            {"JPEGImages": ".jpg", "SegmentationClass": ".png"},
            self.split_file,
            "extract VOCtrainval_11-May-2012.tar completely",
        )
        for image_id in self.ids:
            files.require(image_id)
        self.images = [self.root / "JPEGImages" / f"{i}.jpg" for i in self.ids]
        self.label_maps = [self.root / "SegmentationClass" / f"{i}.png" for i in self.ids]

    def _read_ids(self, config_prefix: str) -> list[str]:
        return read_image_ids(
            self.split_file,
            f"the {self.split!r} segmentation split list. Check {config_prefix}.root (the VOC2012 "
            f"folder)",
        )

    def __len__(self) -> int:
        return len(self.ids)
