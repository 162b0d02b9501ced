"""UCF101Index: the official lists, their quirks, and the errors for broken copies."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.ucf101 import UCF101Index
from tests.fixtures.videos import DEFAULT_CLASSES, make_ucf101_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory):
    return make_ucf101_tree(tmp_path_factory.mktemp("ucf"), frames=True)


def _label_of_folder(path: Path) -> int:
    return [c.lower() for c in DEFAULT_CLASSES].index(path.parent.name.lower())


def test_classes_follow_class_index_order(tree) -> None:
    index = UCF101Index(tree.video_root, tree.split_dir)
    assert index.classes == list(DEFAULT_CLASSES)


def test_train_list_labels_and_paths(tree) -> None:
    index = UCF101Index(tree.video_root, tree.split_dir, split=1, subset="train")
    # 3 classes x 4 groups, group 1 is split 1's test group.
    assert len(index.samples) == 9
    for path, label in index.samples:
        assert path.is_file() and path.suffix == ".avi"
        assert label == _label_of_folder(path)
        assert "_g01_" not in path.name


def test_test_list_labels_come_from_the_class_folder(tree) -> None:
    index = UCF101Index(tree.video_root, tree.split_dir, split=2, subset="test")
    assert [label for _, label in index.samples] == [0, 1, 2]
    assert all("_g02_" in path.name for path, _ in index.samples)


def test_handstand_case_quirk_is_resolved(tree) -> None:
    index = UCF101Index(tree.video_root, tree.split_dir, split=1, subset="test")
    path, label = index.samples[1]
    assert label == 1
    assert path.parent.name == "HandstandPushups"
    assert path.name == "v_HandStandPushups_g01_c01.avi"


def test_list_entries_match_case_insensitively(tmp_path: Path) -> None:
    tree = make_ucf101_tree(tmp_path)
    test_list = tree.split_dir / "testlist01.txt"
    test_list.write_text(test_list.read_text().upper())
    index = UCF101Index(tree.video_root, tree.split_dir, split=1, subset="test")
    assert [p for p, _ in index.samples] == [
        tree.videos[f"{c}/v_{f}_g01_c01.avi"]
        for c, f in zip(
            DEFAULT_CLASSES, ("ApplyEyeMakeup", "HandStandPushups", "YoYo"), strict=True
        )
    ]


def test_crlf_lists_read_like_lf_lists(tmp_path: Path) -> None:
    lf = make_ucf101_tree(tmp_path / "lf")
    crlf = make_ucf101_tree(tmp_path / "crlf", crlf=True)
    assert b"\r\n" in (crlf.split_dir / "trainlist01.txt").read_bytes()
    for subset in ("train", "test"):
        a = UCF101Index(lf.video_root, lf.split_dir, subset=subset).samples
        b = UCF101Index(crlf.video_root, crlf.split_dir, subset=subset).samples
        assert [(p.relative_to(tmp_path / "lf"), y) for p, y in a] == [
            (p.relative_to(tmp_path / "crlf"), y) for p, y in b
        ]


def test_frames_root_gives_frame_folders_without_videos(tree) -> None:
    index = UCF101Index(None, tree.split_dir, split=1, subset="train", frames_root=tree.frames_root)
    assert len(index.samples) == 9
    for path, label in index.samples:
        assert path.is_dir() and (path / "img_00001.jpg").is_file()
        assert path.parent.parent == tree.frames_root
        assert label == _label_of_folder(path)


def test_frame_folders_match_case_insensitively(tmp_path: Path) -> None:
    tree = make_ucf101_tree(tmp_path, frames=True)
    # Some frame dumps lower-case the HandStand spelling in the folder names.
    folder = tree.frames_root / "HandstandPushups"
    for video in folder.iterdir():
        video.rename(video.with_name(video.name.replace("HandStand", "Handstand")))
    folder.rename(tree.frames_root / "handstandpushups")
    index = UCF101Index(None, tree.split_dir, subset="test", frames_root=tree.frames_root)
    assert index.samples[1][0].name == "v_HandstandPushups_g01_c01"


def test_unknown_class_error_names_file_and_line(tmp_path: Path) -> None:
    tree = make_ucf101_tree(tmp_path)
    train_list = tree.split_dir / "trainlist01.txt"
    lines = train_list.read_text().splitlines()
    lines.insert(3, "Juggling/v_Juggling_g01_c01.avi 4")
    train_list.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=r"trainlist01\.txt:4: class 'Juggling'"):
        UCF101Index(tree.video_root, tree.split_dir)


def test_label_disagreeing_with_class_is_an_error(tmp_path: Path) -> None:
    tree = make_ucf101_tree(tmp_path)
    train_list = tree.split_dir / "trainlist01.txt"
    train_list.write_text(train_list.read_text().replace("_g02_c01.avi 1", "_g02_c01.avi 3", 1))
    with pytest.raises(DatasetError, match=r"trainlist01\.txt:1: label 3"):
        UCF101Index(tree.video_root, tree.split_dir)


def test_missing_split_file_says_which_split_and_what_is_expected(tmp_path: Path) -> None:
    tree = make_ucf101_tree(tmp_path, missing_split_files=("trainlist02.txt",))
    UCF101Index(tree.video_root, tree.split_dir, split=1)  # other splits still work
    with pytest.raises(DatasetError) as error:
        UCF101Index(tree.video_root, tree.split_dir, split=2)
    message = str(error.value)
    assert "trainlist02.txt is missing (split 2)" in message
    assert "classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt" in message
    assert "tasks.temporal.reader.split_dir" in message


def test_missing_root_error_names_the_config_key(tmp_path: Path) -> None:
    tree = make_ucf101_tree(tmp_path)
    with pytest.raises(DatasetError, match=r"nowhere does not exist; set data\.temporal\.root"):
        UCF101Index(tmp_path / "nowhere", tree.split_dir, config_prefix="data.temporal")
    with pytest.raises(DatasetError, match=r"set tasks\.temporal\.reader\.frames_root"):
        UCF101Index(tree.video_root, tree.split_dir, frames_root=tmp_path / "no_frames")
    with pytest.raises(DatasetError, match=r"set tasks\.temporal\.reader\.split_dir"):
        UCF101Index(tree.video_root, tmp_path / "no_lists")


def test_split_must_be_one_to_three(tree) -> None:
    with pytest.raises(DatasetError, match="split must be 1, 2 or 3"):
        UCF101Index(tree.video_root, tree.split_dir, split=4)


def test_missing_videos_are_an_error_unless_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree = make_ucf101_tree(tmp_path)
    gone = tree.videos["YoYo/v_YoYo_g03_c01.avi"]
    gone.unlink()
    with pytest.raises(DatasetError, match=r"1 of the 9 videos .*YoYo/v_YoYo_g03_c01\.avi"):
        UCF101Index(tree.video_root, tree.split_dir)
    with caplog.at_level(logging.WARNING, logger="ssl_rl.data.readers.ucf101"):
        index = UCF101Index(tree.video_root, tree.split_dir, allow_missing=True)
    assert index.num_missing == 1
    assert len(index.samples) == 8 and gone not in [p for p, _ in index.samples]
    assert "v_YoYo_g03_c01.avi" in caplog.text


def test_root_above_the_class_folders_gets_a_hint(tmp_path: Path) -> None:
    tree = make_ucf101_tree(tmp_path)
    with pytest.raises(DatasetError, match=r"directly holds the class folders .*ApplyEyeMakeup"):
        UCF101Index(tmp_path, tree.split_dir, allow_missing=True)
