"""The demo video generator: real UCF-101 format, deterministic, idempotent, learnable content."""

from __future__ import annotations

import colorsys
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.pretext.clip_dataset import ClipDataset
from ssl_rl.data.pretext.clip_transform import ClipTransform
from ssl_rl.data.readers.ucf101 import UCF101Index
from ssl_rl.data.readers.video_io import AviVideoSource
from ssl_rl.data.synthetic import videos as synthetic_videos
from ssl_rl.data.synthetic.motions import Trajectory
from ssl_rl.data.synthetic.videos import (
    CLASS_SPECS,
    ensure_video_dataset,
    generate_video_dataset,
    groups_in_test_split,
    render_clip,
)
from tests.data.pretext.finished import finished

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
    assert paths.classes == ("MoveRight", "FallDown", "Grow")
    assert (paths.video_root / "FallDown" / "v_FallDown_g03_c01.avi").is_file()
    assert b"\r\n" in (paths.split_dir / "classInd.txt").read_bytes()
    for split in (1, 2, 3):
        train = UCF101Index(paths.video_root, paths.split_dir, split, "train")
        test = UCF101Index(paths.video_root, paths.split_dir, split, "test")
        assert train.classes == list(paths.classes)
        assert len(train.samples) == 9 and len(test.samples) == 3
        assert not {p for p, _ in train.samples} & {p for p, _ in test.samples}
        assert all(f"_g0{split}_" in p.name for p, _ in test.samples)
        assert [label for _, label in test.samples] == [0, 1, 2]
    clip = finished(ClipDataset([p for p, _ in test.samples], 4, ClipTransform(16, 20, 18, 1)), 0)
    assert clip.shape == (4, 3, 16, 16)
    # The file holds what render_clip draws (up to the codec), which the content tests check.
    video = paths.video_root / "Grow" / "v_Grow_g02_c01.avi"
    decoded = AviVideoSource().read_frames(video, range(6)).permute(0, 2, 3, 1).float()
    rng = np.random.default_rng
    rendered = render_clip(CLASS_SPECS[2], rng([0, 2, 2]), rng([0, 2, 2, 1]), 6, 32, 24).frames
    assert (decoded - torch.from_numpy(np.stack(rendered)).float()).abs().mean() < 12


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
        with pytest.raises(DatasetError, match=r"made with .*seed"):
            ensure_video_dataset(tmp_path, **{**TINY, "seed": 3})
    # Without the marker (an interrupted run) the dataset is written again.
    marker.unlink()
    video = first.video_root / "Grow" / "v_Grow_g04_c01.avi"
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
    expected = (
        rf"generator version \d+, this code writes version {synthetic_videos.GENERATOR_VERSION}"
    )
    with pytest.raises(DatasetError, match=expected) as error:
        ensure_video_dataset(tmp_path, **TINY)
    assert f"rm -r {tmp_path}" in str(error.value)


def _clip(class_index: int, group: int, clip: int, frames: int = 10, seed: int = 0):
    """A clip exactly as the generator renders it (its frames, masks and draws)."""
    return render_clip(
        CLASS_SPECS[class_index],
        np.random.default_rng([seed, class_index, group]),
        np.random.default_rng([seed, class_index, group, clip]),
        frames,
        64,
        48,
    )


def _path_length(path: Trajectory) -> float:
    """How far the pose moves over the clip (position, turn, size, deformation)."""
    steps = [np.abs(np.diff(part)).sum() for part in vars(path).values()]
    return float(sum(steps))


def test_classes_move_with_a_clear_arrow_of_time() -> None:
    names = [spec.name for spec in CLASS_SPECS]
    for group in (1, 2, 3):
        for index, name in enumerate(names):
            clip = _clip(index, group, 1)
            area = clip.masks.sum(axis=(1, 2))
            assert (area > 10).all(), name
            ys = [np.nonzero(m)[0].mean() for m in clip.masks]
            xs = [np.nonzero(m)[1].mean() for m in clip.masks]
            dx, dy = np.array(xs) - np.mean(xs), np.array(ys) - np.mean(ys)
            heights = [np.ptp(np.nonzero(m)[0]) for m in clip.masks]
            widths = [np.ptp(np.nonzero(m)[1]) for m in clip.masks]
            path = clip.trajectory
            turn = path.angle[-1] - path.angle[0]
            change = {
                "MoveRight": xs[-1] - xs[0] - 8,
                "MoveUp": ys[0] - ys[-1] - 8,
                "Roll": min(xs[-1] - xs[0] - 8, turn - np.pi / 2),
                "Zigzag": min(xs[-1] - xs[0] - 8, np.sum(np.abs(np.diff(ys))) - 2 * np.ptp(ys)),
                "FallDown": ys[-1] - ys[0] - 8,
                "Grow": area[-1] / area[0] - 2,
                "Shrink": area[0] / area[-1] - 2,
                "RotateClockwise": turn - np.pi / 2,
                "Squash": (widths[-1] / heights[-1]) / (widths[0] / heights[0]) - 1.5,
                # Damped: the first swing / bounce is wider than the last.
                "Swing": np.ptp(xs[:4]) - np.ptp(xs[-4:]),
                "BounceBall": np.ptp(ys[:5]) - np.ptp(ys[-5:]),
                # Counter-clockwise on screen: the path's signed area (y down) is negative.
                "Orbit": -np.sum(dx[:-1] * np.diff(dy) - dy[:-1] * np.diff(dx)),
            }[name]
            assert change > 0, (name, group, change)


def test_objects_are_large_on_a_calm_background() -> None:
    # What keeps the demo's order task learnable at 36 px frames (since generator version 2):
    # version 1 had objects of 4 % of the frame on a background of luma std 0.09. Both are
    # relative to the frame, so a small frame shows them as well as the demo's 128x96.
    areas, background_std = [], []
    for index in range(len(CLASS_SPECS)):
        for group in (1, 2, 3, 4):
            clip = _clip(index, group, 1, frames=2)
            frame = clip.frames[0].astype(np.float32).mean(axis=-1) / 255
            areas.append(clip.masks[0].mean())
            background_std.append(frame[~clip.masks[0]].std())
    assert np.median(areas) > 0.06
    assert max(background_std) < 0.07


def test_nuisances_vary_within_a_class_and_colour_does_not_tell_the_class() -> None:
    """Colour, texture, size, background (per group) and speed (per clip) are not the class."""
    for index in range(len(CLASS_SPECS)):
        looks = [_clip(index, group, 1, frames=2).appearance for group in range(1, 9)]
        hues = [colorsys.rgb_to_hsv(*look.colour)[0] for look in looks]
        assert np.ptp(hues) > 0.4, CLASS_SPECS[index].name
        assert len({look.texture for look in looks}) >= 3
        assert np.ptp([look.radius for look in looks]) > 1.0
        assert np.ptp([look.background_luma for look in looks]) > 0.2
        in_group = [_clip(index, 1, clip) for clip in (1, 2, 3)]
        speeds = [_path_length(c.trajectory) for c in in_group]
        assert len({round(float(s), 3) for s in speeds}) == 3
    # Leave-one-group-out nearest neighbour on the mean object and background colour of a clip:
    # near chance (10 classes), where version 2's colour families scored nearly 100 %.
    features, labels, groups = [], [], []
    for index in range(10):
        for group in range(1, 9):
            clip = _clip(index, group, 1, frames=1)
            frame, mask = clip.frames[0].astype(np.float32) / 255, clip.masks[0]
            features.append(np.concatenate([frame[mask].mean(0), frame[~mask].mean(0)]))
            labels.append(index)
            groups.append(group)
    features_a, labels_a, groups_a = np.array(features), np.array(labels), np.array(groups)
    distances = np.linalg.norm(features_a[:, None] - features_a[None], axis=-1)
    distances[groups_a[:, None] == groups_a[None]] = np.inf
    accuracy = (labels_a[distances.argmin(axis=1)] == labels_a).mean()
    assert accuracy < 0.3, accuracy


def test_every_class_has_every_group_and_clip(tmp_path: Path) -> None:
    paths = generate_video_dataset(tmp_path, **{**TINY, "clips_per_group": 2})
    for name in paths.classes:
        assert len(list((paths.video_root / name).glob("*.avi"))) == 4 * 2
    for split in (1, 2, 3):
        train = UCF101Index(paths.video_root, paths.split_dir, split, "train")
        counts = np.bincount([label for _, label in train.samples])
        assert counts.tolist() == [6, 6, 6]


def test_rejects_impossible_parameters(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        generate_video_dataset(tmp_path, **{**TINY, "num_classes": len(CLASS_SPECS) + 1})
    with pytest.raises(ValueError, match="even"):
        generate_video_dataset(tmp_path, **{**TINY, "width": 33})


def test_worker_processes_write_the_same_files(tmp_path: Path) -> None:
    settings = {"num_classes": 2, "groups": 4, "clips_per_group": 1, "num_frames": 3,
                "width": 32, "height": 24, "progress": False}  # fmt: skip
    one = generate_video_dataset(tmp_path / "one", **settings)
    two = generate_video_dataset(tmp_path / "two", **settings, workers=2)
    files = sorted(p.relative_to(one.root) for p in one.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two.root) for p in two.root.rglob("*") if p.is_file())
    for name in files:
        assert (one.root / name).read_bytes() == (two.root / name).read_bytes(), name
