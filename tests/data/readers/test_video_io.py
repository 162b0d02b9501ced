"""Video sources: frame counts, the right frames at the right indices, and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssl_rl.data.readers.any_video import AnyVideoSource
from ssl_rl.data.readers.video_io import (
    AviVideoSource,
    CorruptVideoError,
    FrameCountMismatchError,
    FrameFolderSource,
    _AviInfo,
    write_avi,
)
from tests.fixtures.videos import (
    bar_column,
    frame_value,
    write_fixture_frames,
    write_fixture_video,
)

# Lossy MPEG-4 / JPEG coding of flat frames moves the gray level by a few units at most.
TOLERANCE = 4


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {
        "gop4": write_fixture_video(root / "gop4.avi", 20, gop_size=4),
        "one_key": write_fixture_video(root / "one_key.avi", 20, gop_size=250),
        "b_frames": write_fixture_video(root / "b_frames.avi", 20, gop_size=6, max_b_frames=2),
        "frames": write_fixture_frames(root / "v_Clip_g01_c01", 20),
    }


def _gray_levels(frames: torch.Tensor) -> list[float]:
    return [float(f.float().median()) for f in frames]


@pytest.mark.parametrize("name", ["gop4", "one_key", "b_frames"])
def test_avi_frame_count(clips: dict[str, Path], name: str) -> None:
    assert AviVideoSource().num_frames(clips[name]) == 20


def test_frame_folder_count(clips: dict[str, Path]) -> None:
    assert FrameFolderSource().num_frames(clips["frames"]) == 20


@pytest.mark.parametrize("name", ["gop4", "one_key", "b_frames", "frames"])
def test_read_frames_returns_the_requested_frames(clips: dict[str, Path], name: str) -> None:
    indices = [13, 0, 5, 5, 19]
    frames = AnyVideoSource().read_frames(clips[name], indices)
    assert frames.dtype == torch.uint8
    assert frames.shape == (5, 3, 48, 64)
    for level, index in zip(_gray_levels(frames), indices, strict=True):
        assert abs(level - frame_value(index)) <= TOLERANCE, (index, level)
    # The bar (the frame's other marker) sits where the fixture drew it.
    levels = frames.float().flatten(1).median(dim=1).values[:, None, None, None]
    columns = (frames.float() - levels).abs().mean(dim=(1, 2)).argmax(dim=1)
    assert columns.tolist() == pytest.approx([bar_column(i, 64) for i in indices], abs=1)


@pytest.mark.parametrize("name", ["gop4", "one_key", "b_frames"])
def test_seeking_gives_the_frames_of_a_full_decode(clips: dict[str, Path], name: str) -> None:
    seeking, sequential = AviVideoSource(seek=True), AviVideoSource(seek=False)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        indices = torch.randperm(20, generator=generator)[:5].tolist()
        assert torch.equal(
            seeking.read_frames(clips[name], indices), sequential.read_frames(clips[name], indices)
        )
    keyframes = seeking._info[clips[name]].keyframes
    if name == "b_frames":
        assert keyframes is None  # timestamps are not frame ordinals: decoded from the start
    else:
        # GOP keyframes plus the encoder's scene-change ones: seeking has entry points.
        assert keyframes is not None and keyframes[0] == 0
        assert name != "gop4" or len(keyframes) >= 5


def test_frame_folder_matches_the_video(clips: dict[str, Path]) -> None:
    indices = [2, 9, 17]
    from_video = AviVideoSource().read_frames(clips["gop4"], indices).float()
    from_folder = FrameFolderSource().read_frames(clips["frames"], indices).float()
    assert from_video.shape == from_folder.shape
    assert (from_video - from_folder).abs().mean() < 2


def test_corrupt_video_error_names_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "v_Junk_g01_c01.avi"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(range(256)) * 8)
    with pytest.raises(CorruptVideoError, match=r"v_Junk_g01_c01\.avi"):
        AviVideoSource().num_frames(junk)


def test_truncated_video_reports_only_decodable_frames(tmp_path: Path) -> None:
    video = tmp_path / "v.avi"
    # A static texture makes every keyframe large, so the cut falls among the frames.
    coarse = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(0)) * 80 - 40
    texture = torch.nn.functional.interpolate(coarse, size=(48, 64), mode="bilinear")[0]
    frames = [
        (texture.permute(1, 2, 0) + frame_value(k) / 2 + 60).clamp(0, 255).byte().numpy()
        for k in range(30)
    ]
    write_avi(video, frames, gop_size=5)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 3])  # loses the AVI index and a third of the frames
    source = AviVideoSource()
    count = source.num_frames(video)
    assert 0 < count < 30
    # The last packet is cut short (its frame is concealed); the one before is intact.
    decoded = source.read_frames(video, [count - 2, count - 1]).permute(0, 2, 3, 1).float()
    assert (decoded[0] - torch.from_numpy(frames[count - 2]).float()).abs().mean() < 3


@pytest.mark.parametrize("seek", [True, False])
def test_overstated_frame_count_is_corrected(clips: dict[str, Path], seek: bool) -> None:
    source = AviVideoSource(seek=seek)
    keyframes = [0, 4, 8, 12, 16, 20] if seek else None
    source._info[clips["gop4"]] = _AviInfo(num_frames=24, keyframes=keyframes)
    with pytest.raises(FrameCountMismatchError, match="reports 24 frames but only 20 decode"):
        source.read_frames(clips["gop4"], [3, 22])
    assert source.num_frames(clips["gop4"]) == 20
    assert source.read_frames(clips["gop4"], [19]).shape == (1, 3, 48, 64)


def test_index_beyond_the_end_is_rejected(clips: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="out of range"):
        AviVideoSource().read_frames(clips["gop4"], [20])
    with pytest.raises(ValueError, match="out of range"):
        FrameFolderSource().read_frames(clips["frames"], [20])


def test_undecodable_jpeg_error_names_the_frame(tmp_path: Path) -> None:
    folder = write_fixture_frames(tmp_path / "v_Clip_g01_c02", 5)
    (folder / "img_00003.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(CorruptVideoError, match=r"img_00003\.jpg"):
        FrameFolderSource().read_frames(folder, [1, 2])


def test_gap_in_frame_numbers_is_reported(tmp_path: Path) -> None:
    folder = write_fixture_frames(tmp_path / "v_Clip_g01_c03", 5)
    (folder / "img_00002.jpg").unlink()
    with pytest.raises(CorruptVideoError, match=r"not consecutive .*img_00002\.jpg"):
        FrameFolderSource().num_frames(folder)


def test_missing_or_empty_frame_folder(tmp_path: Path) -> None:
    with pytest.raises(CorruptVideoError, match="does not exist"):
        FrameFolderSource().num_frames(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorruptVideoError, match="no frames named like"):
        FrameFolderSource().num_frames(tmp_path / "empty")
