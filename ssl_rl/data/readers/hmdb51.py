"""Reader for the official HMDB-51 release and its three train/test splits.

Layout: ``<video_root>/<class>/<video>.avi`` and ``testTrainMulti_7030_splits/`` with one file
``<class>_test_split{1,2,3}.txt`` per class and split, lines ``<video>.avi <flag>`` (1 train,
2 test, 0 unused). Classes are the split files' prefixes, sorted, labels 0-based. Video names
contain characters such as ``!()&[]``: files are matched by exact name in a directory listing,
never through glob patterns. CRLF line endings, a BOM and trailing blanks are accepted. Frames
may come from a prepared tree (``python -m ssl_rl.data.prepare_frames``):
``<frames_root>/<class>/<video stem>/img_00001.jpg`` or ``<frames_root>/<class>/<video stem>.npy``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepared.manifest import check_video_frames_root
from ssl_rl.data.readers.list_files import read_list_lines

logger = logging.getLogger(__name__)

SPLIT_FILE_PATTERN = re.compile(r"^(?P<name>.+)_test_split(?P<split>[123])\.txt$")
_FLAG_OF_SUBSET = {"train": "1", "test": "2"}
_MAX_LISTED = 5


def _visible_dirs(folder: Path) -> list[str]:
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )


class HMDB51Index:
    """The (video or frame folder, 0-based label) pairs of one subset of one official split.

    Same interface as :class:`~ssl_rl.data.readers.ucf101.UCF101Index` (``samples``, ``classes``,
    ``num_missing``), so both feed the same frame datasets. With ``frames_root`` the samples are
    frame folders (or, where none exists, ``.npy`` frame arrays; a ``prepared.json`` there must
    be complete and of this format version) and ``video_root`` may be None. A listed video
    missing on disk is an error unless ``allow_missing``: then it is skipped, counted in
    ``num_missing`` and logged.
    """

    def __init__(
        self,
        video_root: Path | str | None,
        split_dir: Path | str,
        split: int = 1,
        subset: Literal["train", "test"] = "train",
        frames_root: Path | str | None = None,
        allow_missing: bool = False,
        config_prefix: str = "datasets.hmdb51",
    ) -> None:
        if split not in (1, 2, 3):
            raise DatasetError(
                f"HMDB-51 split must be 1, 2 or 3, got {split} ({config_prefix}.split)"
            )
        if subset not in _FLAG_OF_SUBSET:
            raise DatasetError(
                f"HMDB-51 subset must be 'train' or 'test', got {subset!r} ({config_prefix}.subset)"
            )
        self.split, self.subset = split, subset
        self._prefix = config_prefix
        self.split_dir = self._existing_dir(
            split_dir, "split_dir", "the testTrainMulti_7030_splits files"
        )
        if frames_root is not None:
            self.data_root = self._existing_dir(
                frames_root,
                "frames_root",
                "the prepared frames (<class>/<video>/img_00001.jpg or <class>/<video>.npy)",
            )
            check_video_frames_root(self.data_root, f"{config_prefix}.frames_root")
        elif video_root is not None:
            self.data_root = self._existing_dir(
                video_root, "root", "the HMDB-51 class folders (brush_hair/, cartwheel/, ...)"
            )
        else:
            raise DatasetError(f"set {config_prefix}.root (or {config_prefix}.frames_root)")
        self.frames = frames_root is not None

        split_files = self._split_files()
        self.classes: list[str] = sorted(split_files)
        self._check_folders_match(split_files)
        self.samples: list[tuple[Path, int]] = []
        missing: list[str] = []
        for label, name in enumerate(self.classes):
            folder = self.data_root / name
            on_disk = set(os.listdir(folder))
            for video in self._parse(split_files[name]):
                entry = video.rsplit(".", 1)[0] if self.frames else video
                if entry in on_disk:
                    self.samples.append((folder / entry, label))
                elif self.frames and f"{entry}.npy" in on_disk:
                    self.samples.append((folder / f"{entry}.npy", label))
                else:
                    missing.append(f"{name}/{entry}")
        self.num_missing = len(missing)
        if missing:
            self._report_missing(missing, allow_missing)

    def _existing_dir(self, path: Path | str, key: str, holds: str) -> Path:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise DatasetError(
                f"HMDB-51 folder {path} does not exist; set {self._prefix}.{key} to the folder "
                f"that holds {holds}"
            )
        return path

    def _split_files(self) -> dict[str, Path]:
        """Class name → its split file for ``self.split``."""
        files = {}
        for entry in os.listdir(self.split_dir):
            match = SPLIT_FILE_PATTERN.match(entry)
            if match and int(match["split"]) == self.split:
                files[match["name"]] = self.split_dir / entry
        if not files:
            raise DatasetError(
                f"{self.split_dir} has no <class>_test_split{self.split}.txt files; "
                f"{self._prefix}.split_dir must be the extracted testTrainMulti_7030_splits folder"
            )
        return files

    def _check_folders_match(self, split_files: dict[str, Path]) -> None:
        folders = set(_visible_dirs(self.data_root))
        key = f"{self._prefix}.frames_root" if self.frames else f"{self._prefix}.root"
        without_list = sorted(folders - set(split_files))
        if without_list:
            name = without_list[0]
            raise DatasetError(
                f"class folder {self.data_root / name} has no split file "
                f"{self.split_dir / f'{name}_test_split{self.split}.txt'}; {key} must hold only "
                f"the 51 class folders and {self._prefix}.split_dir all their split files"
            )
        without_folder = sorted(set(split_files) - folders)
        if without_folder:
            name = without_folder[0]
            raise DatasetError(
                f"{split_files[name]} has no class folder {self.data_root / name} "
                f"({len(without_folder)} such classes, e.g. {without_folder[:_MAX_LISTED]}); "
                f"{key} must be the folder that directly holds the class folders"
            )

    def _parse(self, path: Path) -> list[str]:
        """The video names of ``path`` whose flag selects ``self.subset``, in file order."""
        wanted = _FLAG_OF_SUBSET[self.subset]
        videos, seen = [], set()
        for line_number, line in read_list_lines(path):
            fields = line.rsplit(None, 1)
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise DatasetError(
                    f"{path}:{line_number}: expected '<video>.avi <0|1|2>' "
                    f"(0 unused, 1 train, 2 test), got {line!r}"
                )
            video, flag = fields
            if video in seen:
                raise DatasetError(f"{path}:{line_number}: video {video!r} listed twice")
            seen.add(video)
            if flag == wanted:
                videos.append(video)
        return videos

    def _report_missing(self, missing: list[str], allow_missing: bool) -> None:
        key = f"{self._prefix}.frames_root" if self.frames else f"{self._prefix}.root"
        what = "frame folders (or .npy arrays)" if self.frames else "videos"
        summary = (
            f"{len(missing)} of the {len(missing) + len(self.samples)} {what} of split "
            f"{self.split} ({self.subset}) listed in {self.split_dir} are not under "
            f"{self.data_root} (e.g. {missing[:_MAX_LISTED]})"
        )
        if not self.samples:
            raise DatasetError(
                f"{summary}: {key} must be the folder that directly holds the class folders"
            )
        if not allow_missing:
            raise DatasetError(
                f"{summary}. A partial copy changes the benchmark: complete the dataset, fix "
                f"{key}, or set {self._prefix}.allow_missing=true to skip them."
            )
        logger.warning("%s; skipping them (%s.allow_missing=true)", summary, self._prefix)
