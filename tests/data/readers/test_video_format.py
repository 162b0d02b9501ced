"""Which copy of UCF-101 the temporal task reads: ``format`` auto | avi | jpeg | uint8."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepare_frames import extract_all
from ssl_rl.data.pretext.clip_dataset import ClipDataset, ClipPretext
from ssl_rl.data.pretext.clip_transform import ClipTransform
from ssl_rl.data.readers.ucf101 import UCF101Splits
from ssl_rl.data.readers.video_arrays import ArrayVideoSource
from tests.fixtures.videos import make_ucf101_tree


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ucf")
    tree = make_ucf101_tree(root, classes=("YoYo", "Drumming"), num_frames=8)
    extract_all(tree.video_root, root / "arrays", workers=1, progress=False, format="uint8")
    extract_all(tree.video_root, root / "frames", workers=1, progress=False, format="jpeg")
    return tree, root


def _reader(tree, **fields) -> UCF101Splits:
    return UCF101Splits(root=str(tree.video_root), split_dir=str(tree.split_dir), **fields)


def test_auto_prefers_arrays_then_frames_then_videos(prepared, tmp_path: Path) -> None:
    tree, root = prepared
    both = {"arrays_root": str(root / "arrays"), "frames_root": str(root / "frames")}
    train, test = _reader(tree, **both).samples("tasks.temporal.reader")
    assert all(p.suffix == ".npy" and p.is_file() for p in train + test)
    no_arrays = {**both, "arrays_root": str(tmp_path / "absent")}
    train, _ = _reader(tree, **no_arrays).samples("tasks.temporal.reader")
    assert all(p.is_dir() for p in train)
    train, _ = _reader(tree, arrays_root=str(tmp_path / "absent")).samples("k")
    assert all(p.suffix == ".avi" for p in train)
    forced = _reader(tree, format="avi", **both).samples("k")[0]
    assert all(p.suffix == ".avi" for p in forced)


def test_missing_arrays_are_reported_with_the_command(
    prepared, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree, _ = prepared
    reader = _reader(tree, format="uint8", arrays_root=str(tmp_path / "absent"))
    with pytest.raises(DatasetError, match="arrays_root") as error:
        reader.samples("tasks.temporal.reader")
    assert "python -m ssl_rl.data.prepare_frames" in str(error.value)
    assert "--format uint8 --for-transform 128,112,64" in str(error.value)
    with caplog.at_level(logging.INFO, logger="ssl_rl.data.readers.ucf101"):
        _reader(tree, arrays_root=str(tmp_path / "absent")).samples("tasks.temporal.reader")
    assert "decoding the .avi files" in caplog.text and "prepare_frames" in caplog.text
    with pytest.raises(DatasetError, match="expected one of auto, avi, jpeg, uint8"):
        _reader(tree, format="mp4").samples("tasks.temporal.reader")


def test_clip_pretext_crops_prescaled_arrays_and_refuses_other_sizes(prepared) -> None:
    tree, root = prepared
    transform = partial(ClipTransform, frame_size=16, resize_short=24, crop=20, jitter=2)
    short_side = transform().prescaled_short_side
    assert short_side == 19
    arrays = root / "arrays_19"
    extract_all(
        tree.video_root, arrays, workers=1, progress=False, format="uint8", short_side=short_side
    )
    reader = _reader(tree, format="uint8", arrays_root=str(arrays))
    train, _ = reader.samples("tasks.temporal.reader")
    pretext = ClipPretext(transform=transform, num_frames=4)
    dataset = pretext.dataset(train, train=True, seed=0)
    assert dataset.transform.crop == 16 and dataset.transform.resize_short == 19
    clips = pretext.finish(default_collate([dataset[0], dataset[1]]))
    assert clips.shape == (2, 4, 3, 16, 16)
    full_size = _reader(tree, format="uint8", arrays_root=str(root / "arrays"))
    with pytest.raises(DatasetError, match="--short-side 19"):
        pretext.dataset(full_size.samples("k")[0], train=True, seed=0)


def test_reading_only_the_crop_windows_gives_the_whole_frame_path_samples(prepared) -> None:
    tree, root = prepared
    transform = ClipTransform(frame_size=16, resize_short=24, crop=20, jitter=2, gray_prob=0.5)
    prescaled = transform.prescaled()
    arrays = root / "arrays_19"
    if not arrays.is_dir():
        extract_all(tree.video_root, arrays, workers=1, progress=False, format="uint8",
                    short_side=19)  # fmt: skip
    samples = sorted(arrays.glob("*/*.npy"))
    windows = ClipDataset(samples, 4, prescaled, seed=3)
    whole = ClipDataset(samples, 4, prescaled, seed=3, source=ArrayVideoSource())
    assert windows.source.crop_reader(samples[0]) is not None
    for index in range(len(samples)):
        torch.manual_seed(index)
        a = windows[index]
        torch.manual_seed(index)
        b = whole[index]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
