"""ArrayVideoSource and the video readers over a uint8-prepared tree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepare_frames import extract_all
from ssl_rl.data.readers.any_video import AnyVideoSource
from ssl_rl.data.readers.hmdb51 import HMDB51Index
from ssl_rl.data.readers.ucf101 import UCF101Index, UCF101Splits
from ssl_rl.data.readers.video_arrays import ArrayVideoSource
from ssl_rl.data.readers.video_io import CorruptVideoError
from tests.fixtures.hmdb import make_hmdb_tree
from tests.fixtures.videos import make_ucf101_tree


@pytest.fixture
def array(tmp_path: Path) -> Path:
    path = tmp_path / "v_X_g01_c01.npy"
    data = np.random.default_rng(0).integers(0, 256, (6, 10, 12, 3), dtype=np.uint8)
    np.save(path, data)
    return path


def test_read_frames_returns_channels_first_views_of_the_array(array: Path) -> None:
    source = ArrayVideoSource()
    assert source.num_frames(array) == 6 and source.frame_size(array) == (10, 12)
    frames = source.read_frames(array, [5, 0, 5])
    assert frames.shape == (3, 3, 10, 12) and frames.dtype == torch.uint8
    assert frames.is_contiguous(memory_format=torch.channels_last)
    data = np.load(array)
    assert torch.equal(frames, torch.from_numpy(data[[5, 0, 5]]).permute(0, 3, 1, 2))
    assert torch.equal(AnyVideoSource().read_frames(array, [5, 0, 5]), frames)
    assert torch.equal(source.read_frames(array, torch.tensor([5, 0, 5])), frames)


def test_array_truncated_after_its_header_was_cached(array: Path) -> None:
    source = ArrayVideoSource()
    assert source.num_frames(array) == 6
    array.write_bytes(array.read_bytes()[:-100])
    with pytest.raises(CorruptVideoError, match=r"truncated \(frame 5 ends past the end"):
        source.read_frames(array, [0, 5])


def test_read_crops_equals_slicing_read_frames(array: Path) -> None:
    source = ArrayVideoSource()
    indices, tops, lefts = [4, 1, 1], [0, 3, 2], [5, 0, 7]
    crops = source.read_crops(array, indices, tops, lefts, size=5)
    frames = source.read_frames(array, indices)
    expected = torch.stack(
        [f[:, t : t + 5, s : s + 5] for f, t, s in zip(frames, tops, lefts, strict=True)]
    )
    assert crops.shape == (3, 3, 5, 5) and torch.equal(crops, expected)
    with pytest.raises(ValueError, match="outside the 10x12 frames"):
        source.read_crops(array, [0], [6], [0], size=5)
    with pytest.raises(ValueError, match="out of range"):
        source.read_frames(array, [6])


def test_truncated_or_garbage_array_names_the_file_and_the_command(tmp_path: Path) -> None:
    root = tmp_path / "prepared"
    truncated = root / "YoYo" / "v_YoYo_g01_c01.npy"
    truncated.parent.mkdir(parents=True)
    np.save(truncated, np.zeros((4, 8, 8, 3), dtype=np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:-10])
    (root / "prepared.json").write_text(
        json.dumps(
            {
                "kind": "video_uint8",
                "version": 1,
                "source": "/data/UCF-101",
                "settings": {"short_side": 73, "stride": 1},
                "complete": True,
                "files": 1,
                "bytes": 1,
                "skipped": [],
                "command": "python -m ssl_rl.data.prepare_frames --src /data/UCF-101 ...",
            }
        )
    )
    with pytest.raises(CorruptVideoError, match=r"v_YoYo_g01_c01.npy: truncated.*delete it"):
        ArrayVideoSource().num_frames(truncated)
    with pytest.raises(CorruptVideoError, match=r"prepare_frames --src /data/UCF-101"):
        ArrayVideoSource().read_frames(truncated, [0])
    garbage = root / "YoYo" / "garbage.npy"
    garbage.write_bytes(b"not an array at all")
    with pytest.raises(CorruptVideoError, match=r"garbage\.npy: not a readable \.npy"):
        ArrayVideoSource().num_frames(garbage)
    floats = root / "YoYo" / "floats.npy"
    np.save(floats, np.zeros((2, 4, 4, 3), dtype=np.float32))
    with pytest.raises(CorruptVideoError, match="expected a C-order uint8"):
        ArrayVideoSource().num_frames(floats)


@pytest.fixture(scope="module")
def ucf(tmp_path_factory: pytest.TempPathFactory):
    tree = make_ucf101_tree(tmp_path_factory.mktemp("ucf"), num_frames=5)
    tree.frames_root = tree.video_root.parent / "u8"
    extract_all(tree.video_root, tree.frames_root, workers=1, progress=False, format="uint8")
    return tree


def test_ucf101_splits_over_a_uint8_tree_give_npy_samples(ucf) -> None:
    splits = UCF101Splits(
        root="unused", split_dir=str(ucf.split_dir), frames_root=str(ucf.frames_root)
    )
    train, test = splits.samples("tasks.temporal.reader")
    assert (len(train), len(test)) == (9, 3)
    assert all(path.suffix == ".npy" and path.is_file() for path in train + test)
    # The case quirk: folder HandstandPushups, files v_HandStandPushups_...
    assert test[1].name == "v_HandStandPushups_g01_c01.npy"
    assert AnyVideoSource().read_frames(test[1], [0, 4]).shape == (2, 3, 48, 64)


def test_frame_folder_wins_over_an_array_of_the_same_video(ucf, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    (root / "YoYo" / "v_YoYo_g01_c01").mkdir(parents=True)
    (root / "YoYo" / "v_YoYo_g01_c01.npy").write_bytes(b"")
    index = UCF101Index(None, ucf.split_dir, 1, "test", frames_root=root, allow_missing=True)
    assert [path.name for path, _ in index.samples] == ["v_YoYo_g01_c01"]


def test_incomplete_prepared_frames_root_is_refused(ucf, tmp_path: Path) -> None:
    manifest = json.loads((ucf.frames_root / "prepared.json").read_text())
    root = tmp_path / "copy"
    root.mkdir()
    (root / "prepared.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(DatasetError, match=r"tasks.x.frames_root.*incomplete.*prepare_frames"):
        UCF101Index(None, ucf.split_dir, frames_root=root, config_prefix="tasks.x")
    (root / "prepared.json").write_text(json.dumps({**manifest, "kind": "images"}))
    with pytest.raises(DatasetError, match="kind 'images'"):
        UCF101Index(None, ucf.split_dir, frames_root=root)


def test_hmdb51_over_a_uint8_tree(tmp_path: Path) -> None:
    tree = make_hmdb_tree(tmp_path)
    frames_root = tmp_path / "u8"
    stats = extract_all(tree.video_root, frames_root, workers=1, progress=False, format="uint8")
    assert not stats.skipped
    index = HMDB51Index(None, tree.split_dir, 1, "train", frames_root=frames_root)
    videos = HMDB51Index(tree.video_root, tree.split_dir, 1, "train")
    assert [p.with_suffix(".avi").name for p, _ in index.samples] == [
        p.name for p, _ in videos.samples
    ]
    assert [y for _, y in index.samples] == [y for _, y in videos.samples]
