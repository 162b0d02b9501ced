"""What the UCF-101 and HMDB-51 split readers share: the checked split, subset and folders, and
the report of listed videos that are not on disk."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar, Literal

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepared.manifest import check_video_frames_root

MAX_LISTED = 5


class VideoSplitIndex:
    """Base of the (video or frame folder, 0-based label) pairs of one subset of one split.

    Checks ``split`` and ``subset`` and sets ``split_dir`` and ``data_root``: the prepared
    frames under ``frames_root`` (``frames`` True; a ``prepared.json`` there must be complete and
    of this format version) or else the videos under ``video_root``. Subclasses fill
    ``classes`` and ``samples``; ``config_prefix`` names the config keys in messages.
    """

    DATASET: ClassVar[str]  # the release's name in messages
    SPLIT_DIR_HOLDS: ClassVar[str]  # what split_dir holds
    CLASS_FOLDER: ClassVar[str]  # a class folder in the layout, "<class>" or "<Class>"
    CLASS_FOLDERS: ClassVar[str]  # the first class folders of the release

    classes: list[str]
    samples: list[tuple[Path, int]]

    def __init__(
        self,
        video_root: Path | str | None,
        split_dir: Path | str,
        split: int,
        subset: Literal["train", "test"],
        frames_root: Path | str | None,
        config_prefix: str,
    ) -> None:
        if split not in (1, 2, 3):
            raise DatasetError(
                f"{self.DATASET} split must be 1, 2 or 3, got {split} ({config_prefix}.split)"
            )
        if subset not in ("train", "test"):
            raise DatasetError(
                f"{self.DATASET} subset must be 'train' or 'test', got {subset!r} "
                f"({config_prefix}.subset)"
            )
        self.split, self.subset = split, subset
        self._prefix = config_prefix
        self.split_dir = self._existing_dir(split_dir, "split_dir", self.SPLIT_DIR_HOLDS)
        if frames_root is not None:
            layout = self.CLASS_FOLDER
            self.data_root = self._existing_dir(
                frames_root,
                "frames_root",
                f"the prepared frames ({layout}/<video>/img_00001.jpg or {layout}/<video>.npy)",
            )
            check_video_frames_root(self.data_root, f"{config_prefix}.frames_root")
        elif video_root is not None:
            self.data_root = self._existing_dir(
                video_root, "root", f"the {self.DATASET} class folders ({self.CLASS_FOLDERS})"
            )
        else:
            raise DatasetError(f"set {config_prefix}.root (or {config_prefix}.frames_root)")
        self.frames = frames_root is not None

    def _existing_dir(self, path: Path | str, key: str, holds: str) -> Path:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise DatasetError(
                f"{self.DATASET} folder {path} does not exist; set {self._prefix}.{key} to the "
                f"folder that holds {holds}"
            )
        return path

    def _root_key(self) -> str:
        """The config key of ``data_root``."""
        return f"{self._prefix}.frames_root" if self.frames else f"{self._prefix}.root"

    def _missing_what(self) -> str:
        return "frame folders (or .npy arrays)" if self.frames else "videos"

    def _refuse_or_skip_missing(self, summary: str, allow_missing: bool, example: str = "") -> None:
        """Refuse the listed samples missing on disk (``summary`` says which), or log the skip.

        ``example`` ends the error when nothing at all was found."""
        key = self._root_key()
        if not self.samples:
            raise DatasetError(
                f"{summary}: {key} must be the folder that directly holds the class folders"
                f"{example}"
            )
        if not allow_missing:
            raise DatasetError(
                f"{summary}. A partial copy changes the benchmark: complete the dataset, fix "
                f"{key}, or set {self._prefix}.allow_missing=true to skip them."
            )
        logging.getLogger(type(self).__module__).warning(
            "%s; skipping them (%s.allow_missing=true)", summary, self._prefix
        )
