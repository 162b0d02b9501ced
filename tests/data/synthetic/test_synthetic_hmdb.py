"""The demo's HMDB-51 stand-in: the demo videos in the release's layout, read by the reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.hmdb51 import HMDB51Index
from ssl_rl.data.synthetic.hmdb import MARKER, ensure_hmdb_dataset, hmdb_class_name
from ssl_rl.data.synthetic.videos import ensure_video_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    ensure_video_dataset(
        root / "ucf101",
        num_classes=3,
        groups=4,
        clips_per_group=2,
        num_frames=4,
        width=32,
        height=24,
        progress=False,
    )
    return ensure_hmdb_dataset(root / "hmdb51", root / "ucf101")


def test_class_names_are_hmdb_style() -> None:
    assert hmdb_class_name("MoveRight") == "move_right"
    assert hmdb_class_name("Grow") == "grow"


def test_reader_sees_the_ucf_splits(demo: Path) -> None:
    for split in (1, 2, 3):
        kwargs = {"video_root": demo / "videos", "split_dir": demo / "testTrainMulti_7030_splits"}
        train = HMDB51Index(**kwargs, split=split, subset="train")
        test = HMDB51Index(**kwargs, split=split, subset="test")
        assert train.classes == sorted(train.classes) and len(train.classes) == 3
        # 4 groups × 2 clips per class: one group tested (2 clips), group 4's clip 1 unused.
        assert len(test.samples) == 3 * 2 and len(train.samples) == 3 * 5
        assert not {p for p, _ in train.samples} & {p for p, _ in test.samples}
        assert all(p.is_file() and "(Take!)_&_" in p.name for p, _ in train.samples)


def test_idempotent_and_refuses_a_missing_source(demo: Path, tmp_path: Path) -> None:
    stamp = (demo / MARKER).stat().st_mtime_ns
    ensure_hmdb_dataset(demo, demo.parent / "ucf101")
    assert (demo / MARKER).stat().st_mtime_ns == stamp
    with pytest.raises(DatasetError, match="no complete demo video set"):
        ensure_hmdb_dataset(tmp_path / "hmdb51", tmp_path / "ucf101")
