"""Reader for the official UCF-101 release and its three train/test splits.

Layout: ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and ``ucfTrainTestlist/`` with
``classInd.txt`` (``1 ApplyEyeMakeup``, 1-based), ``trainlist0{1,2,3}.txt`` (``Class/v_....avi 1``)
and ``testlist0{1,2,3}.txt`` (``Class/v_....avi``, no label). Class names are matched
case-insensitively on disk and in the lists (the release has folder ``HandstandPushups`` but
files ``v_HandStandPushups_...``); CRLF line endings and blank lines are accepted. Frames may
come from a prepared tree (``python -m ssl_rl.data.prepare_frames``):
``<frames_root>/<Class>/<video_stem>/img_00001.jpg`` or ``<frames_root>/<Class>/<video_stem>.npy``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepared.manifest import canonical_command, manifest_path
from ssl_rl.data.readers.list_files import read_list_lines
from ssl_rl.data.readers.split_index import MAX_LISTED, VideoSplitIndex

logger = logging.getLogger(__name__)

SPLIT_FILES = "classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt"


def read_class_index(path: Path) -> list[str]:
    """Class names of ``classInd.txt`` in file order; checks the 1-based numbering."""
    classes: list[str] = []
    for line_number, line in read_list_lines(path):
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise DatasetError(
                f"{path}:{line_number}: expected '<index> <ClassName>', got {line!r}"
            )
        if int(fields[0]) != len(classes) + 1:
            raise DatasetError(
                f"{path}:{line_number}: class index {fields[0]} out of sequence "
                f"(expected {len(classes) + 1}; classInd.txt is numbered 1, 2, 3, ...)"
            )
        classes.append(fields[1])
    if not classes:
        raise DatasetError(f"{path}: no classes listed")
    return classes


def _children_by_lower_name(folder: Path) -> dict[str, Path]:
    return {child.name.lower(): child for child in folder.iterdir()}


class UCF101Index(VideoSplitIndex):
    """The (video or frame folder, 0-based label) pairs of one subset of one official split.

    ``video_root`` is the folder holding the class folders (``.../UCF-101``). When
    ``frames_root`` is given, samples are frame folders (or, where no folder exists, ``.npy``
    frame arrays) below it and the videos are not needed (``video_root`` may then be None); a
    ``prepared.json`` there must say the preparation is complete and of this format version. A
    listed video missing on disk is an error (a partial copy would silently change the
    benchmark) unless ``allow_missing``: then it is skipped, counted in ``num_missing`` and
    logged. ``config_prefix`` names the config keys in messages.
    """

    DATASET = "UCF-101"
    SPLIT_DIR_HOLDS = "the ucfTrainTestlist folder"
    CLASS_FOLDER = "<Class>"
    CLASS_FOLDERS = "ApplyEyeMakeup/, ..."

    def __init__(
        self,
        video_root: Path | str | None,
        split_dir: Path | str,
        split: int = 1,
        subset: Literal["train", "test"] = "train",
        frames_root: Path | str | None = None,
        allow_missing: bool = False,
        config_prefix: str = "tasks.temporal.reader",
    ) -> None:
        super().__init__(video_root, split_dir, split, subset, frames_root, config_prefix)

        self.classes = read_class_index(self._split_file("classInd.txt"))
        self._label_of = {name.lower(): label for label, name in enumerate(self.classes)}
        list_file = self._split_file(f"{subset}list0{split}.txt")
        entries = self._parse_list(list_file)
        self.samples: list[tuple[Path, int]] = []
        missing: list[str] = []
        self._folders = _children_by_lower_name(self.data_root)
        self._files: dict[str, dict[str, Path]] = {}
        for relative, label in entries:
            found = self._locate(relative)
            if found is None:
                missing.append(relative)
            else:
                self.samples.append((found, label))
        self.num_missing = len(missing)
        if missing:
            self._report_missing(list_file, missing, allow_missing)

    def _split_file(self, name: str) -> Path:
        path = self.split_dir / name
        if not path.is_file():
            which = "the class index" if name == "classInd.txt" else f"split {self.split}"
            raise DatasetError(
                f"{path} is missing ({which}); {self._prefix}.split_dir must be the official "
                f"ucfTrainTestlist folder with {SPLIT_FILES}"
            )
        return path

    def _parse_list(self, list_file: Path) -> list[tuple[str, int]]:
        entries = []
        for line_number, line in read_list_lines(list_file):
            fields = line.replace("\\", "/").split()
            if len(fields) not in (1, 2):
                raise DatasetError(
                    f"{list_file}:{line_number}: expected 'Class/v_Class_gXX_cYY.avi [label]', "
                    f"got {line!r}"
                )
            relative = fields[0]
            class_name = relative.split("/")[0] if "/" in relative else _class_from_name(relative)
            label = self._label_of.get(class_name.lower())
            if label is None:
                raise DatasetError(
                    f"{list_file}:{line_number}: class {class_name!r} is not in classInd.txt "
                    f"({len(self.classes)} classes); are the list files from the same release?"
                )
            if len(fields) == 2 and fields[1] != str(label + 1):
                raise DatasetError(
                    f"{list_file}:{line_number}: label {fields[1]} does not match class "
                    f"{class_name!r}, which is {label + 1} in classInd.txt"
                )
            entries.append((relative, label))
        return entries

    def _locate(self, relative: str) -> Path | None:
        """The video (frame folder, frame array) of a list entry; names match case-insensitively."""
        parts = relative.split("/")
        class_name = parts[0] if len(parts) > 1 else _class_from_name(parts[-1])
        folder = self._folders.get(class_name.lower())
        if folder is None or not folder.is_dir():
            return None
        files = self._files.get(folder.name)
        if files is None:
            files = self._files[folder.name] = _children_by_lower_name(folder)
        name = parts[-1].lower()
        if self.frames:
            stem = name.rsplit(".", 1)[0]
            return files.get(stem) or files.get(stem + ".npy")
        return files.get(name)

    def _report_missing(self, list_file: Path, missing: list[str], allow_missing: bool) -> None:
        summary = (
            f"{len(missing)} of the {len(missing) + len(self.samples)} {self._missing_what()} "
            f"listed in {list_file} are not under {self.data_root} (e.g. {missing[:MAX_LISTED]})"
        )
        example = f" (e.g. {self.data_root / self.classes[0]})"
        self._refuse_or_skip_missing(summary, allow_missing, example)


def _class_from_name(file_name: str) -> str:
    """``v_ApplyEyeMakeup_g01_c01.avi`` → ``ApplyEyeMakeup``."""
    stem = file_name.rsplit(".", 1)[0]
    return stem[2:].rsplit("_", 2)[0] if stem.startswith("v_") else stem


VIDEO_FORMATS = ("auto", "avi", "jpeg", "uint8")


@dataclass(frozen=True)
class UCF101Splits:
    """A task's reader for the UCF-101 release: one official split's train and test videos.

    ``format`` picks the copy of the videos the samples come from: ``avi`` (the release under
    ``root``), ``jpeg`` (frame folders under ``frames_root``), ``uint8`` (frame arrays under
    ``arrays_root``, ``python -m ssl_rl.data.prepare_frames --format uint8``: no decoding at
    train time), or ``auto``: the arrays when ``arrays_root`` holds a prepared folder, else the
    frame folders when ``frames_root`` exists, else the release. ``allow_missing``: a listed
    video missing on disk is a counted, logged skip instead of an error.
    """

    root: str
    split_dir: str
    split: int = 1
    frames_root: str | None = None
    allow_missing: bool = False
    format: str = "auto"
    arrays_root: str | None = None

    def samples(self, config_key: str) -> tuple[list[Path], list[Path]]:
        """Training and test sample paths (videos, frame folders or arrays) of the split."""
        prepared = self.prepared_root(config_key)
        subsets = [
            UCF101Index(
                Path(self.root),
                Path(self.split_dir),
                split=self.split,
                subset=subset,
                frames_root=prepared,
                allow_missing=self.allow_missing,
                config_prefix=config_key,
            )
            for subset in ("train", "test")
        ]
        train, test = ([path for path, _ in index.samples] for index in subsets)
        return train, test

    def prepared_root(self, config_key: str) -> Path | None:
        """The folder of prepared frames the ``format`` selects (None: the .avi files)."""
        if self.format not in VIDEO_FORMATS:
            raise DatasetError(
                f"{config_key}.format={self.format!r}: expected one of {', '.join(VIDEO_FORMATS)}"
            )
        arrays = Path(self.arrays_root).expanduser() if self.arrays_root else None
        frames = Path(self.frames_root).expanduser() if self.frames_root else None
        chosen = self.format
        if chosen == "auto":
            if arrays is not None and manifest_path(arrays).is_file():
                chosen = "uint8"
            elif frames is not None and frames.is_dir():
                chosen = "jpeg"
            else:
                chosen = "avi"
                if arrays is not None:
                    logger.info(
                        "UCF-101: no prepared uint8 frames at %s (%s.arrays_root); decoding the "
                        ".avi files, several times slower. Prepare them once with: %s",
                        arrays,
                        config_key,
                        self._prepare_command(arrays),
                    )
        roots = {"avi": None, "jpeg": (frames, "frames_root"), "uint8": (arrays, "arrays_root")}
        selected = roots[chosen]
        if selected is None:
            return None
        folder, key = selected
        if folder is None or not folder.is_dir():
            raise DatasetError(
                f"{config_key}.format={chosen} but {config_key}.{key} ({folder}) is not a folder; "
                f"prepare it with: {self._prepare_command(folder or Path('<dst>'), chosen)}"
            )
        logger.info("UCF-101: reading %s frames from %s", chosen, folder)
        return folder

    def _prepare_command(self, dst: Path, kind: str = "uint8") -> str:
        settings = {"for_transform": "128,112,64"} if kind == "uint8" else {}
        return canonical_command(f"video_{kind}", dst, settings, Path(self.root).expanduser())
