"""HMDB51Index: split flags, class order, special-character names, and the errors."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.any_video import AnyVideoSource
from ssl_rl.data.readers.hmdb51 import HMDB51Index
from tests.fixtures.hmdb import FLAGS, NUM_FRAMES, make_hmdb_tree, video_names

SORTED_CLASSES = ["brush_hair", "cartwheel", "kiss"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory):
    return make_hmdb_tree(tmp_path_factory.mktemp("hmdb"), frames=True)


def expected(split: int, flag: int) -> list[tuple[str, str, int]]:
    """(class, file name, label) of the videos with ``flag`` in ``split``, from the table."""
    return [
        (name, video, label)
        for label, name in enumerate(SORTED_CLASSES)
        for video, f in zip(video_names(name), FLAGS[split], strict=True)
        if f == flag
    ]


def listed(index: HMDB51Index) -> list[tuple[str, str, int]]:
    return [(path.parent.name, path.name, label) for path, label in index.samples]


def test_classes_are_the_sorted_split_file_prefixes(tree) -> None:
    index = HMDB51Index(tree.video_root, tree.split_dir)
    assert index.classes == SORTED_CLASSES


@pytest.mark.parametrize("split", [1, 2, 3])
@pytest.mark.parametrize(("subset", "flag"), [("train", 1), ("test", 2)])
def test_subset_keeps_the_videos_with_its_flag(tree, split: int, subset: str, flag: int) -> None:
    index = HMDB51Index(tree.video_root, tree.split_dir, split=split, subset=subset)
    assert listed(index) == expected(split, flag)
    assert index.num_missing == 0
    assert all(path.is_file() for path, _ in index.samples)


def test_unused_videos_are_in_no_subset(tree) -> None:
    train = listed(HMDB51Index(tree.video_root, tree.split_dir, split=1, subset="train"))
    test = listed(HMDB51Index(tree.video_root, tree.split_dir, split=1, subset="test"))
    assert not set(train) & set(test)
    assert len(train) + len(test) == 3 * 4  # one of the five videos is flagged 0


def test_special_character_names_are_exact_and_decodable(tree) -> None:
    index = HMDB51Index(tree.video_root, tree.split_dir, split=1, subset="test")
    [path] = [p for p, label in index.samples if label == 2]
    assert path == tree.video_root / "kiss" / "Jeanette_&_Alex_kiss_h_nm_np2_fr_goo_1.avi"
    bracketed = tree.video_root / "kiss" / "[HD]_Glove_Grab_(Hey!)_kiss_u_cm_np1_ba_med_2.avi"
    assert (bracketed, 2) in HMDB51Index(tree.video_root, tree.split_dir).samples
    assert AnyVideoSource().num_frames(bracketed) == NUM_FRAMES


def test_frames_root_gives_frame_folders_without_videos(tree) -> None:
    index = HMDB51Index(None, tree.split_dir, split=3, subset="test", frames_root=tree.frames_root)
    assert [(c, v + ".avi", y) for c, v, y in listed(index)] == expected(3, 2)
    folder, _ = index.samples[0]
    assert folder.is_dir() and folder.parent.parent == tree.frames_root
    assert AnyVideoSource().read_frames(folder, [0, 5]).shape[0] == 2


def test_crlf_split_files_read_like_lf(tmp_path: Path) -> None:
    lf = make_hmdb_tree(tmp_path / "lf", classes=("kiss",))
    crlf = make_hmdb_tree(tmp_path / "crlf", classes=("kiss",), crlf=True)
    assert b" \r\n" in (crlf.split_dir / "kiss_test_split1.txt").read_bytes()
    a = listed(HMDB51Index(lf.video_root, lf.split_dir, subset="test"))
    assert a == listed(HMDB51Index(crlf.video_root, crlf.split_dir, subset="test"))


# --- errors -----------------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path):
    return make_hmdb_tree(tmp_path, classes=("kiss", "wave"))


def test_class_folder_without_split_file(small) -> None:
    (small.split_dir / "wave_test_split2.txt").unlink()
    HMDB51Index(small.video_root, small.split_dir, split=1)  # split 1 is complete
    with pytest.raises(DatasetError, match=re.escape(str(small.video_root / "wave")) + ".*"):
        HMDB51Index(small.video_root, small.split_dir, split=2)
    with pytest.raises(DatasetError, match=r"wave_test_split2\.txt"):
        HMDB51Index(small.video_root, small.split_dir, split=2)


def test_split_file_without_class_folder(small) -> None:
    shutil.rmtree(small.video_root / "wave")
    message = re.escape(str(small.split_dir / "wave_test_split1.txt")) + " has no class folder"
    with pytest.raises(DatasetError, match=message):
        HMDB51Index(small.video_root, small.split_dir)


def test_bad_flag_names_file_and_line(small) -> None:
    split_file = small.split_dir / "kiss_test_split1.txt"
    lines = split_file.read_text().splitlines()
    lines[3] = lines[3].replace(" 0 ", " 3 ")
    split_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=re.escape(f"{split_file}:4: expected")):
        HMDB51Index(small.video_root, small.split_dir)


def test_missing_video_is_an_error_unless_allowed(small, caplog) -> None:
    gone = small.video_root / "wave" / video_names("wave")[1]  # a test video of split 1
    gone.unlink()
    with pytest.raises(DatasetError, match=r"1 of the 2 videos.*allow_missing=true"):
        HMDB51Index(small.video_root, small.split_dir, subset="test")
    with caplog.at_level(logging.WARNING, logger="ssl_rl.data.readers.hmdb51"):
        index = HMDB51Index(small.video_root, small.split_dir, subset="test", allow_missing=True)
    assert index.num_missing == 1
    assert gone not in [path for path, _ in index.samples] and len(index.samples) == 1
    assert "skipping" in caplog.text and gone.name in caplog.text
    # Train videos are all there: no error for that subset.
    assert HMDB51Index(small.video_root, small.split_dir, subset="train").num_missing == 0


def test_wrong_folders_and_arguments(small, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"eval\.hmdb\.split_dir"):
        HMDB51Index(small.video_root, tmp_path / "nope", config_prefix="eval.hmdb")
    with pytest.raises(DatasetError, match=r"no <class>_test_split1\.txt files"):
        HMDB51Index(small.video_root, small.video_root)
    with pytest.raises(DatasetError, match=r"split must be 1, 2 or 3"):
        HMDB51Index(small.video_root, small.split_dir, split=4)
    with pytest.raises(DatasetError, match=r"subset must be"):
        HMDB51Index(small.video_root, small.split_dir, subset="val")  # type: ignore[arg-type]
    # Pointing at the parent of the class folders: its sub-folders have no split files.
    with pytest.raises(DatasetError, match=r"hmdb51 has no split file"):
        HMDB51Index(small.video_root.parent, small.split_dir)
