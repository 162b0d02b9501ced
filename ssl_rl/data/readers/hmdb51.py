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

import os
import re
from pathlib import Path
from typing import Literal

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.list_files import read_list_lines
from ssl_rl.data.readers.split_index import MAX_LISTED, VideoSplitIndex

SPLIT_FILE_PATTERN = re.compile(r"^(?P<name>.+)_test_split(?P<split>[123])\.txt$")
_FLAG_OF_SUBSET = {"train": "1", "test": "2"}


def _visible_dirs(folder: Path) -> list[str]:
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )


class HMDB51Index(VideoSplitIndex):
    """The (video or frame folder, 0-based label) pairs of one subset of one official split.

    Same interface as :class:`~ssl_rl.data.readers.ucf101.UCF101Index` (``samples``, ``classes``,
    ``num_missing``), so both feed the same frame datasets. With ``frames_root`` the samples are
    frame folders (or, where none exists, ``.npy`` frame arrays; a ``prepared.json`` there must
    be complete and of this format version) and ``video_root`` may be None. A listed video
    missing on disk is an error unless ``allow_missing``: then it is skipped, counted in
    ``num_missing`` and logged.
    """

    DATASET = "HMDB-51"
    SPLIT_DIR_HOLDS = "the testTrainMulti_7030_splits files"
    CLASS_FOLDER = "<class>"
    CLASS_FOLDERS = "brush_hair/, cartwheel/, ..."

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
        super().__init__(video_root, split_dir, split, subset, frames_root, config_prefix)

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
        key = self._root_key()
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
                f"({len(without_folder)} such classes, e.g. {without_folder[:MAX_LISTED]}); "
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
        summary = (
            f"{len(missing)} of the {len(missing) + len(self.samples)} {self._missing_what()} of "
            f"split {self.split} ({self.subset}) listed in {self.split_dir} are not under "
            f"{self.data_root} (e.g. {missing[:MAX_LISTED]})"
        )
        self._refuse_or_skip_missing(summary, allow_missing)
