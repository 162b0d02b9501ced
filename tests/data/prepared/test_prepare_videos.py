"""prepare_frames: uint8 arrays and JPEG folders from a UCF-101 tree, resumable, with a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepare_frames import extract_all, main
from ssl_rl.data.prepared.manifest import check_prepared, read_manifest
from ssl_rl.data.prepared.video_frames import uint8_short_side
from ssl_rl.data.readers.video_arrays import ArrayVideoSource
from ssl_rl.data.readers.video_io import AviVideoSource, FrameFolderSource
from tests.fixtures.videos import make_ucf101_tree


@pytest.fixture(scope="module")
def ucf(tmp_path_factory: pytest.TempPathFactory):
    return make_ucf101_tree(tmp_path_factory.mktemp("ucf"), num_frames=8, corrupt=True)


@pytest.fixture(scope="module")
def full_size(ucf, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """uint8 arrays at the source size (48 px short side: no resize)."""
    dst = tmp_path_factory.mktemp("u8") / "full"
    extract_all(ucf.video_root, dst, workers=2, progress=False, format="uint8")
    return dst


def _npy(root: Path, entry: str) -> Path:
    return (root / entry).with_suffix(".npy")


def test_uint8_arrays_hold_exactly_the_decoded_frames(ucf, full_size: Path) -> None:
    entry = "YoYo/v_YoYo_g02_c01.avi"
    stored = np.load(_npy(full_size, entry))
    assert stored.dtype == np.uint8 and stored.shape == (8, 48, 64, 3)
    assert stored.flags.c_contiguous
    frames = ArrayVideoSource().read_frames(_npy(full_size, entry), [7, 0, 3, 3])
    decoded = AviVideoSource().read_frames(ucf.videos[entry], [7, 0, 3, 3])
    assert frames.dtype == torch.uint8 and torch.equal(frames, decoded)


def test_corrupt_video_is_a_listed_skip_and_the_manifest_complete(ucf, full_size: Path) -> None:
    manifest = read_manifest(full_size)
    assert manifest is not None and manifest.complete
    assert (manifest.kind, manifest.version, manifest.files) == ("video_uint8", 1, 11)
    assert manifest.settings == {"short_side": None, "stride": 1}
    assert manifest.source == str(ucf.video_root.resolve())
    assert [item["file"] for item in manifest.skipped] == [str(p) for p in ucf.corrupt]
    assert manifest.skipped[0]["reason"] == "the file has no video stream"
    assert manifest.bytes == sum(p.stat().st_size for p in full_size.glob("*/*.npy"))
    assert "python -m ssl_rl.data.prepare_frames" in manifest.command
    assert "--format uint8" in manifest.command
    assert not _npy(full_size, "YoYo/v_YoYo_g01_c01.avi").exists()


def test_short_side_and_stride_match_the_clip_transform_resize(ucf, tmp_path: Path) -> None:
    entry = "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
    stats = extract_all(
        ucf.video_root, tmp_path, workers=1, short_side=24, progress=False, format="uint8", stride=3
    )
    assert (stats.written, stats.units, len(stats.skipped)) == (11, 33, 1)
    frames = ArrayVideoSource().read_frames(_npy(tmp_path, entry), [0, 1, 2])
    assert frames.shape == (3, 3, 24, 32)
    decoded = AviVideoSource().read_frames(ucf.videos[entry], [0, 3, 6])
    expected = F.interpolate(
        decoded.contiguous(memory_format=torch.channels_last),
        size=(24, 32),
        mode="bilinear",
        antialias=True,
    )
    assert torch.equal(frames, expected)


def test_jpeg_format_with_stride_and_manifest(ucf, tmp_path: Path) -> None:
    stats = extract_all(ucf.video_root, tmp_path, workers=1, progress=False, stride=2)
    assert (stats.written, stats.units) == (11, 44)
    folder = tmp_path / "YoYo" / "v_YoYo_g02_c01"
    assert FrameFolderSource().num_frames(folder) == 4
    got = FrameFolderSource().read_frames(folder, [1]).float()
    want = AviVideoSource().read_frames(ucf.videos["YoYo/v_YoYo_g02_c01.avi"], [2]).float()
    assert (got - want).abs().mean() < 2
    manifest = check_prepared(tmp_path, "video_jpeg", {"stride": 2}, "key")
    assert manifest.settings == {"short_side": None, "stride": 2, "quality": 90}


def test_resume_keeps_finished_files_and_redoes_partial_ones(ucf, tmp_path: Path) -> None:
    extract_all(ucf.video_root, tmp_path, workers=1, short_side=24, progress=False, format="uint8")
    finished = sorted(tmp_path.glob("*/*.npy"))
    redo = finished.pop(3)
    redo_bytes = redo.read_bytes()
    redo.unlink()
    partial = redo.with_name(redo.name + ".partial")
    partial.write_bytes(b"half an array")  # what an interrupted run leaves
    stale = finished[0].with_name(finished[0].name + ".partial")
    stale.write_bytes(b"left over")
    mtimes = {path: path.stat().st_mtime_ns for path in finished}

    stats = extract_all(
        ucf.video_root, tmp_path, workers=2, short_side=24, progress=False, format="uint8"
    )
    assert (stats.total, stats.already_done, stats.written, len(stats.skipped)) == (12, 10, 1, 1)
    assert {path: path.stat().st_mtime_ns for path in finished} == mtimes
    assert redo.read_bytes() == redo_bytes
    assert not partial.exists() and not stale.exists()
    assert read_manifest(tmp_path).complete  # type: ignore[union-attr]


def test_other_settings_into_the_same_folder_are_refused(ucf, full_size: Path) -> None:
    with pytest.raises(DatasetError, match=r"already holds another preparation.*short_side"):
        extract_all(ucf.video_root, full_size, short_side=24, progress=False, format="uint8")


def test_mismatched_manifest_is_refused_with_the_command(full_size: Path) -> None:
    with pytest.raises(DatasetError) as error:
        check_prepared(full_size, "video_uint8", {"short_side": 73}, "data.frames_root")
    message = str(error.value)
    assert str(full_size) in message and "data.frames_root" in message
    assert "short_side is None but 73 is required" in message
    assert "python -m ssl_rl.data.prepare_frames" in message and "--short-side 73" in message
    with pytest.raises(DatasetError, match="kind 'video_uint8', not 'video_jpeg'"):
        check_prepared(full_size, "video_jpeg", {}, "data.frames_root")


def _edit_manifest(root: Path, **changes: object) -> None:
    path = root / "prepared.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_other_version_or_incomplete_folder_is_refused(ucf, tmp_path: Path) -> None:
    extract_all(ucf.video_root, tmp_path, workers=1, progress=False, format="uint8")
    _edit_manifest(tmp_path, version=0)
    with pytest.raises(DatasetError, match=r"format version 0.*prepare_frames --src"):
        check_prepared(tmp_path, "video_uint8", {}, "k")
    _edit_manifest(tmp_path, version=1, complete=False)
    with pytest.raises(DatasetError, match=r"incomplete.*Rerun.*prepare_frames"):
        check_prepared(tmp_path, "video_uint8", {}, "k")
    (tmp_path / "prepared.json").unlink()
    with pytest.raises(DatasetError, match=r"has no prepared\.json.*prepare_frames"):
        check_prepared(tmp_path, "video_uint8", {}, "k")


def test_cli_for_transform_and_exit_codes(ucf, tmp_path: Path, capsys) -> None:
    assert uint8_short_side(128, 112, 64) == 73
    argv = ["--src", str(ucf.video_root), "--dst", str(tmp_path), "--format", "uint8"]
    code = main([*argv, "--for-transform", "24,24,12", "--workers", "1", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1 and f"FAILED {ucf.corrupt[0]}" in captured.err
    assert "12 videos: 11 extracted (88 frames)" in captured.out
    assert read_manifest(tmp_path).settings["short_side"] == 12  # type: ignore[union-attr]
    assert np.load(next(tmp_path.glob("YoYo/*.npy"))).shape == (8, 12, 16, 3)
    assert main([*argv, "--short-side", "30", "--no-progress"]) == 2
    assert "another preparation" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--for-transform", "128,112"])
