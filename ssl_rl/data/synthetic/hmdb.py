"""The offline demo's stand-in for HMDB-51: the demo's action videos in HMDB-51's layout.

Reads the generated UCF-101-format set (:mod:`ssl_rl.data.synthetic.videos`) and writes what
:class:`~ssl_rl.data.readers.hmdb51.HMDB51Index` reads::

    <root>/videos/<class>/<video>.avi                      hard links to the UCF-format videos
    <root>/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt   "<video>.avi <0|1|2>"

Class folders are the lower-case snake_case class names (``move_right``); video names carry the
characters of real HMDB names (``!()&#``). Split k tests the groups of UCF split k (flag 2)
and trains on the others (1), except the last group's first clip, which is unused (0) in every
split, as HMDB leaves some clips out. A marker holding the source set's marker is written last;
a folder without it, or made from another source set, is rebuilt.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.list_files import read_list_lines
from ssl_rl.data.synthetic.linking import link_or_copy
from ssl_rl.data.synthetic.videos import MARKER as VIDEO_MARKER

logger = logging.getLogger(__name__)

MARKER = ".ssl_rl_hmdb_complete.json"
_VERSION = 1
_UCF_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)\.avi$")


def hmdb_class_name(ucf_name: str) -> str:
    """``MoveRight`` → ``move_right`` (HMDB-51's class naming)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", ucf_name).lower()


def hmdb_video_name(class_name: str, group: int, clip: int) -> str:
    """An HMDB-style file name with the special characters the real release has."""
    return f"#{group:02d}_Demo_(Take!)_&_{class_name}_f_nm_np1_le_goo_{clip}.avi"


def ensure_hmdb_dataset(root: Path | str, ucf_root: Path | str) -> Path:
    """Write the HMDB-51-format copy of the demo videos under ``root`` unless it is current."""
    root, ucf_root = Path(root), Path(ucf_root)
    source_marker = ucf_root / VIDEO_MARKER
    if not source_marker.is_file():
        raise DatasetError(
            f"{ucf_root} holds no complete demo video set ({VIDEO_MARKER} is missing); the "
            f"HMDB-51 stand-in is made from it"
        )
    wanted = {"source": json.loads(source_marker.read_text()), "version": _VERSION}
    marker = root / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return root
    for folder in ("videos", "testTrainMulti_7030_splits"):
        shutil.rmtree(root / folder, ignore_errors=True)
    marker.unlink(missing_ok=True)
    split_dir = root / "testTrainMulti_7030_splits"
    split_dir.mkdir(parents=True)
    lists = ucf_root / "ucfTrainTestlist"
    tested = {split: _test_videos(lists / f"testlist0{split}.txt") for split in (1, 2, 3)}
    videos = sorted((ucf_root / "UCF-101").glob("*/*.avi"))
    last_group = max(_parse(video)[1] for video in videos)
    entries: dict[str, list[tuple[str, str]]] = {}
    for video in videos:
        ucf_class, group, clip = _parse(video)
        name = hmdb_class_name(ucf_class)
        target = root / "videos" / name / hmdb_video_name(name, group, clip)
        target.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(video, target)
        entries.setdefault(name, []).append((target.name, f"{ucf_class}/{video.name}"))
    for name, videos_of_class in entries.items():
        for split, test in tested.items():
            lines = []
            for file_name, ucf_entry in videos_of_class:
                _, group, clip = _parse(Path(ucf_entry))
                unused = group == last_group and clip == 1
                flag = 0 if unused else 2 if ucf_entry in test else 1
                lines.append(f"{file_name} {flag} \n")  # the release ends lines with a blank
            (split_dir / f"{name}_test_split{split}.txt").write_text("".join(lines))
    marker.write_text(json.dumps(wanted, sort_keys=True))
    logger.info("HMDB-51-format demo set: %d videos under %s", len(videos), root)
    return root


def _parse(video: Path) -> tuple[str, int, int]:
    match = _UCF_NAME.match(video.name)
    if match is None:
        raise DatasetError(f"{video}: not a demo video name (v_<Class>_gXX_cYY.avi)")
    return match["cls"], int(match["group"]), int(match["clip"])


def _test_videos(path: Path) -> set[str]:
    return {line.split()[0] for _, line in read_list_lines(path)}
