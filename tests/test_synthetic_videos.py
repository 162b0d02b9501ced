"""The demo video generator: real UCF-101 format, deterministic, idempotent, learnable content."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_rl.data import synthetic_videos
from ssl_rl.data.clip_dataset import ClipDataset
from ssl_rl.data.clip_transform import ClipTransform
from ssl_rl.data.errors import DatasetError
from ssl_rl.data.synthetic_videos import (
    CLASS_SPECS,
    ensure_video_dataset,
    generate_video_dataset,
    groups_in_test_split,
)
from ssl_rl.data.ucf101 import UCF101Index
from ssl_rl.data.video_io import AviVideoSource

TINY = {
    "num_classes": 3,
    "groups": 4,
    "clips_per_group": 1,
    "num_frames": 6,
    "width": 32,
    "height": 24,
    "progress": False,
}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_videos(tmp_path: Path) -> None:
    a = _files(generate_video_dataset(tmp_path / "a", **TINY).root)
    b = _files(generate_video_dataset(tmp_path / "b", **TINY).root)
    c = _files(generate_video_dataset(tmp_path / "c", **{**TINY, "seed": 1}).root)
    assert a == b
    videos = [name for name in a if name.endswith(".avi")]
    assert len(videos) == 12
    assert all(a[name] != c[name] for name in videos)


def test_layout_and_splits_follow_the_release(tmp_path: Path) -> None:
    paths = generate_video_dataset(tmp_path, **TINY)
    assert paths.classes == ("MoveRight", "MoveLeft", "MoveUp")
    assert (paths.video_root / "MoveLeft" / "v_MoveLeft_g03_c01.avi").is_file()
    assert b"\r\n" in (paths.split_dir / "classInd.txt").read_bytes()
    for split in (1, 2, 3):
        train = UCF101Index(paths.video_root, paths.split_dir, split, "train")
        test = UCF101Index(paths.video_root, paths.split_dir, split, "test")
        assert train.classes == list(paths.classes)
        assert len(train.samples) == 9 and len(test.samples) == 3
        assert not {p for p, _ in train.samples} & {p for p, _ in test.samples}
        assert all(f"_g0{split}_" in p.name for p, _ in test.samples)
        assert [label for _, label in test.samples] == [0, 1, 2]
    clip = ClipDataset([p for p, _ in test.samples], 4, ClipTransform(16, 20, 18, 1))[0]
    assert clip.shape == (4, 3, 16, 16)


def test_group_rule_scales_the_official_one() -> None:
    assert [groups_in_test_split(25, k) for k in (1, 2, 3)] == [
        list(range(1, 8)),
        list(range(8, 15)),
        list(range(15, 22)),
    ]
    assert [groups_in_test_split(8, k) for k in (1, 2, 3)] == [[1, 2], [3, 4], [5, 6]]
    with pytest.raises(ValueError, match="groups"):
        groups_in_test_split(3, 1)


def test_ensure_is_idempotent_and_refuses_other_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_video_dataset(tmp_path, **TINY)
    marker = tmp_path / synthetic_videos.MARKER
    assert marker.is_file()

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated a complete dataset")

    with monkeypatch.context() as patch:
        patch.setattr(synthetic_videos, "generate_video_dataset", must_not_run)
        assert ensure_video_dataset(tmp_path, **TINY) == first
        with pytest.raises(DatasetError, match="generated with"):
            ensure_video_dataset(tmp_path, **{**TINY, "seed": 3})
    # Without the marker (an interrupted run) the dataset is written again.
    marker.unlink()
    video = first.video_root / "MoveUp" / "v_MoveUp_g04_c01.avi"
    video.unlink()
    assert ensure_video_dataset(tmp_path, **TINY) == first
    assert video.is_file() and marker.is_file()


@pytest.mark.parametrize("marker_change", ["older_version", "no_version"])
def test_ensure_refuses_videos_of_another_generator_version(
    tmp_path: Path, marker_change: str
) -> None:
    ensure_video_dataset(tmp_path, **TINY)
    marker = tmp_path / synthetic_videos.MARKER
    found = json.loads(marker.read_text())
    assert found["generator_version"] == synthetic_videos.GENERATOR_VERSION
    if marker_change == "older_version":
        found["generator_version"] -= 1
    else:
        del found["generator_version"]  # written before the version was recorded
    marker.write_text(json.dumps(found))
    with pytest.raises(DatasetError, match="delete the folder"):
        ensure_video_dataset(tmp_path, **TINY)


def _object_masks(video: Path) -> np.ndarray:
    """Per-frame mask of the saturated object (the backgrounds are nearly gray)."""
    source = AviVideoSource()
    frames = source.read_frames(video, range(source.num_frames(video))).float() / 255
    saturation = 1 - frames.min(dim=1).values / frames.max(dim=1).values.clamp_min(1e-3)
    return (saturation > 0.6).numpy()


def test_classes_move_with_a_clear_arrow_of_time(tmp_path: Path) -> None:
    names = ("MoveRight", "MoveLeft", "MoveUp", "FallDown", "Grow", "Shrink")
    paths = generate_video_dataset(
        tmp_path, num_classes=6, groups=4, clips_per_group=1, num_frames=10, progress=False
    )
    assert paths.classes == names
    for name in names:
        masks = _object_masks(paths.video_root / name / f"v_{name}_g01_c01.avi")
        area = masks.sum(axis=(1, 2))
        assert (area > 10).all(), name
        ys, xs = np.nonzero(masks[0])[0].mean(), np.nonzero(masks[0])[1].mean()
        ye, xe = np.nonzero(masks[-1])[0].mean(), np.nonzero(masks[-1])[1].mean()
        change = {
            "MoveRight": xe - xs,
            "MoveLeft": xs - xe,
            "MoveUp": ys - ye,
            "FallDown": ye - ys,
            "Grow": area[-1] / area[0] - 2,
            "Shrink": area[0] / area[-1] - 2,
        }[name]
        assert change > 0, (name, change)


def test_objects_are_large_on_a_calm_background(tmp_path: Path) -> None:
    # What keeps the demo's order task learnable at 36 px frames (generator version 2):
    # version 1 had objects of 4 % of the frame on a background of luma std 0.09. Both are
    # relative to the frame, so a small frame shows them as well as the demo's 128x96.
    paths = generate_video_dataset(
        tmp_path,
        num_classes=10,
        groups=4,
        clips_per_group=1,
        num_frames=2,
        width=64,
        height=48,
        progress=False,
    )
    areas, background_std = [], []
    source = AviVideoSource()
    for video in sorted(paths.video_root.glob("*/*_c01.avi")):
        frame = source.read_frames(video, [0])[0].float() / 255
        mask = _object_masks(video)[0]
        areas.append(mask.mean())
        background_std.append(frame.mean(dim=0)[torch.from_numpy(~mask)].std().item())
    assert len(areas) == 40
    assert np.median(areas) > 0.06
    assert max(background_std) < 0.07


def test_rejects_impossible_parameters(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        generate_video_dataset(tmp_path, **{**TINY, "num_classes": len(CLASS_SPECS) + 1})
    with pytest.raises(ValueError, match="even"):
        generate_video_dataset(tmp_path, **{**TINY, "width": 33})
