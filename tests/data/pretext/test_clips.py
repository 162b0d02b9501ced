"""ClipTransform, ClipDataset and the frame extraction they can read from."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepare_frames import extract_all, main
from ssl_rl.data.pretext.clip_dataset import ClipDataset, evenly_spaced_indices
from ssl_rl.data.pretext.clip_transform import ClipTransform, normalize_per_part
from ssl_rl.data.readers.any_video import AnyVideoSource
from ssl_rl.data.readers.ucf101 import UCF101Index
from ssl_rl.data.readers.video_io import AviVideoSource, VideoSource, _AviInfo
from tests.data.pretext.finished import finished, finished_batch
from tests.fixtures.videos import make_ucf101_tree

SMALL = {"frame_size": 16, "resize_short": 24, "crop": 20, "jitter": 2}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory):
    return make_ucf101_tree(tmp_path_factory.mktemp("ucf"), num_frames=12)


def _videos(tree) -> list[Path]:
    return [tree.videos[e] for e in sorted(tree.videos)]


def _random_frames(u: int = 4, height: int = 30, width: int = 40, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (u, 3, height, width), generator=generator, dtype=torch.uint8)


class RecordingSource(VideoSource):
    """Wraps a source and remembers the frame indices asked for."""

    def __init__(self, inner: VideoSource) -> None:
        self.inner = inner
        self.calls: list[tuple[Path, list[int]]] = []

    def num_frames(self, path: Path) -> int:
        return self.inner.num_frames(path)

    def read_frames(self, path: Path, indices: Sequence[int]) -> torch.Tensor:
        self.calls.append((path, list(indices)))
        return self.inner.read_frames(path, indices)


# ---------------------------------------------------------------- ClipTransform


@pytest.mark.parametrize("train", [True, False])
def test_transform_shape_and_per_frame_normalisation(train: bool) -> None:
    clip = ClipTransform(**SMALL, train=train)(_random_frames())
    assert clip.shape == (4, 3, 16, 16) and clip.dtype == torch.float32
    assert torch.allclose(clip.mean(dim=(-2, -1)), torch.zeros(4, 3), atol=1e-4)
    assert torch.allclose(clip.std(dim=(-2, -1)), torch.ones(4, 3), atol=1e-4)


def test_frames_are_normalised_like_the_jigsaw_tiles() -> None:
    parts = torch.rand(2, 4, 3, 8, 8)
    parts[0, 1, 2] = 0.25  # a constant channel: only centred
    std, mean = torch.std_mean(parts, dim=(-2, -1), keepdim=True)
    reference = (parts - mean) / torch.where(std < 1e-5, torch.ones_like(std), std)
    assert torch.allclose(normalize_per_part(parts), reference, atol=1e-6)


def test_eval_transform_is_the_deterministic_centre_crop() -> None:
    frames = _random_frames()
    transform = ClipTransform(**SMALL, train=False)
    first = transform(frames, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, transform(frames, generator=torch.Generator().manual_seed(2)))
    # 30x40 → 24x32; centre 20x20 box starts at (2, 6).
    resized = torch.nn.functional.interpolate(
        frames.float(), size=(24, 32), mode="bilinear", antialias=True
    )
    box = resized[..., 2:22, 6:26]
    expected = torch.nn.functional.interpolate(box, size=(16, 16), mode="bilinear", antialias=True)
    expected = (expected - expected.mean(dim=(-2, -1), keepdim=True)) / expected.std(
        dim=(-2, -1), keepdim=True
    )
    # The transform resizes in uint8 (rounding to whole intensity levels twice); a box off by
    # one pixel would differ by ~1 std here.
    assert (first - expected).abs().max() < 0.1
    assert (first - expected).abs().mean() < 0.02


def test_one_crop_box_per_clip_with_per_frame_jitter() -> None:
    still = _random_frames(u=1).expand(6, -1, -1, -1)  # six identical frames
    no_jitter = ClipTransform(**{**SMALL, "jitter": 0})(still, torch.Generator().manual_seed(0))
    assert all(torch.equal(no_jitter[0], frame) for frame in no_jitter)
    jittered = ClipTransform(**{**SMALL, "jitter": 2})(still, torch.Generator().manual_seed(0))
    assert not all(torch.equal(jittered[0], frame) for frame in jittered)


def test_train_transform_is_reproducible_from_its_generator() -> None:
    frames, transform = _random_frames(), ClipTransform(**SMALL, channel_split=True)
    a = transform(frames, torch.Generator().manual_seed(5))
    b = transform(frames, torch.Generator().manual_seed(5))
    c = transform(frames, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_channel_split_copies_one_channel_per_frame() -> None:
    frames = _random_frames(u=8)
    clip = ClipTransform(**SMALL, channel_split=True)(frames, torch.Generator().manual_seed(0))
    assert torch.equal(clip[:, 0], clip[:, 1]) and torch.equal(clip[:, 1], clip[:, 2])
    eval_clip = ClipTransform(**SMALL, channel_split=True, train=False)(frames)
    assert not torch.equal(eval_clip[:, 0], eval_clip[:, 1])


def test_gray_prob_one_makes_the_clip_gray() -> None:
    clip = ClipTransform(**SMALL, gray_prob=1.0)(_random_frames())
    assert torch.allclose(clip[:, 0], clip[:, 2], atol=1e-5)


def test_transform_rejects_a_crop_larger_than_the_resize() -> None:
    with pytest.raises(ValueError, match="crop"):
        ClipTransform(resize_short=40, crop=48)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_transform_stays_on_the_input_device() -> None:
    clip = ClipTransform(**SMALL)(_random_frames().cuda())
    assert clip.is_cuda and clip.shape == (4, 3, 16, 16)


# ---------------------------------------------------------------- ClipDataset


def test_dataset_items_have_the_clip_shape(tree) -> None:
    dataset = ClipDataset(_videos(tree), num_frames=4, transform=ClipTransform(**SMALL))
    assert len(dataset) == 12
    item = finished(dataset, 0)
    assert item.shape == (4, 3, 16, 16) and item.dtype == torch.float32


def test_train_items_use_distinct_sorted_random_frames(tree) -> None:
    source = RecordingSource(AviVideoSource())
    dataset = ClipDataset(
        _videos(tree), num_frames=5, transform=ClipTransform(**SMALL), source=source
    )
    torch.manual_seed(0)
    for i in range(len(dataset)):
        dataset[i]
    draws = [indices for _, indices in source.calls]
    for indices in draws:
        assert indices == sorted(set(indices)) and len(indices) == 5
        assert indices[0] >= 0 and indices[-1] < 12
    assert len({tuple(d) for d in draws}) > 1


def test_eval_items_are_evenly_spaced_unpermuted_and_repeatable(tree) -> None:
    source = RecordingSource(AviVideoSource())
    transform = ClipTransform(**SMALL, train=False)
    dataset = ClipDataset(_videos(tree), num_frames=4, transform=transform, source=source)
    item = finished(dataset, 3)
    assert source.calls == [(_videos(tree)[3], [1, 4, 7, 10])]
    assert evenly_spaced_indices(12, 4) == [1, 4, 7, 10]
    expected = transform(AviVideoSource().read_frames(_videos(tree)[3], [1, 4, 7, 10]))
    assert torch.equal(item, expected)
    assert torch.equal(item, finished(dataset, 3))
    again = ClipDataset(_videos(tree), num_frames=4, transform=transform, seed=9)
    torch.manual_seed(123)
    assert torch.equal(item, finished(again, 3))


def test_train_items_follow_torch_seed(tree) -> None:
    dataset = ClipDataset(_videos(tree), num_frames=4, transform=ClipTransform(**SMALL))
    torch.manual_seed(7)
    first = finished(dataset, 0)
    torch.manual_seed(7)
    assert torch.equal(first, finished(dataset, 0))
    assert not torch.equal(first, finished(dataset, 0))


def test_workers_do_not_repeat_each_others_draws(tree) -> None:
    same_video = [_videos(tree)[0]] * 4
    dataset = ClipDataset(same_video, num_frames=4, transform=ClipTransform(**SMALL))
    loader = DataLoader(dataset, batch_size=1, num_workers=2)
    items = [
        finished_batch(dataset, batch)[0] for batch in loader
    ]  # worker 0 loads items 0 and 2, worker 1 items 1, 3
    assert not torch.equal(items[0], items[1])
    assert not torch.equal(items[2], items[3])


def test_bad_videos_are_skipped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad_tree = make_ucf101_tree(tmp_path, num_frames=8, corrupt=True, too_short=True)
    dataset = ClipDataset(_videos(bad_tree), num_frames=4, transform=ClipTransform(**SMALL))
    with caplog.at_level(logging.WARNING, logger="ssl_rl.data.pretext.clip_dataset"):
        items = [finished(dataset, i) for i in range(len(dataset))]
    assert all(item.shape == (4, 3, 16, 16) for item in items)
    assert dataset.stats["corrupt"] == 1 and dataset.stats["too_short"] == 1
    assert dataset.stats["substituted"] == 2
    assert dataset.skipped_count == 2
    assert "2 unusable video(s) skipped" in dataset.summary()
    (corrupt,), (short,) = bad_tree.corrupt, bad_tree.too_short
    assert str(corrupt) in caplog.text
    assert f"{short}: has 2 frames but a clip needs u=4" in caplog.text


def test_too_many_consecutive_failures_raise(tmp_path: Path) -> None:
    bad_tree = make_ucf101_tree(tmp_path, num_frames=3)
    dataset = ClipDataset(
        _videos(bad_tree),
        num_frames=4,
        transform=ClipTransform(**SMALL),
        max_consecutive_failures=5,
    )
    with pytest.raises(DatasetError, match="5 consecutive videos could not be used"):
        dataset[0]


def test_overstated_frame_count_is_resampled(tree) -> None:
    video = _videos(tree)[0]
    videos = AviVideoSource(seek=False)
    videos._info[video] = _AviInfo(num_frames=40, keyframes=None)
    source = RecordingSource(AnyVideoSource(videos=videos))
    dataset = ClipDataset([video], num_frames=8, transform=ClipTransform(**SMALL), source=source)
    torch.manual_seed(0)
    for _ in range(10):
        if dataset.stats["frame_count_corrected"]:
            break
        assert finished(dataset, 0).shape == (8, 3, 16, 16)
    assert dataset.stats["frame_count_corrected"] == 1
    assert max(source.calls[-1][1]) < 12 and videos.num_frames(video) == 12


# ---------------------------------------------------------------- prepare_frames


def test_extracted_frames_read_like_the_videos(tmp_path: Path) -> None:
    src = make_ucf101_tree(tmp_path / "ucf", num_frames=8, corrupt=True)
    stats = extract_all(src.video_root, tmp_path / "frames", workers=2, progress=False)
    assert (stats.total, stats.written, stats.units) == (12, 11, 88)
    assert [video for video, _ in stats.skipped] == src.corrupt
    assert not list((tmp_path / "frames").glob("*/*.partial"))

    # Split 2 tests on group 2; the corrupt video (group 1) has no frame folder.
    frames_root = tmp_path / "frames"
    frames_index = UCF101Index(None, src.split_dir, 2, "test", frames_root=frames_root)
    video_index = UCF101Index(src.video_root, src.split_dir, 2, "test")
    transform = ClipTransform(**SMALL, train=False)
    from_frames = finished(ClipDataset([p for p, _ in frames_index.samples], 4, transform), 0)
    from_videos = finished(ClipDataset([p for p, _ in video_index.samples], 4, transform), 0)
    assert from_frames.shape == from_videos.shape == (4, 3, 16, 16)
    raw_frames = AnyVideoSource().read_frames(frames_index.samples[0][0], [0, 7]).float()
    raw_video = AnyVideoSource().read_frames(video_index.samples[0][0], [0, 7]).float()
    assert (raw_frames - raw_video).abs().mean() < 2


def test_extraction_resumes_and_resizes(tmp_path: Path) -> None:
    src = make_ucf101_tree(tmp_path / "ucf", classes=("YoYo",), num_frames=5)
    dst = tmp_path / "frames"
    first = extract_all(src.video_root, dst, workers=1, short_side=24, progress=False)
    assert first.written == 4
    # An interrupted run leaves a .partial folder and no finished one.
    done = dst / "YoYo" / "v_YoYo_g02_c01"
    done.rename(done.with_name(done.name + ".partial"))
    second = extract_all(src.video_root, dst, workers=1, short_side=24, progress=False)
    assert (second.already_done, second.written) == (3, 1)
    assert not done.with_name(done.name + ".partial").exists()
    assert AnyVideoSource().read_frames(done, [0, 4]).shape == (2, 3, 24, 32)


def test_cli_reports_failures_with_exit_code(tmp_path: Path, capsys) -> None:
    src = make_ucf101_tree(tmp_path / "ucf", classes=("YoYo",), num_frames=4, corrupt=True)
    code = main(["--src", str(src.video_root), "--dst", str(tmp_path / "f"), "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "4 videos: 3 extracted" in captured.out
    assert f"FAILED {src.corrupt[0]}" in captured.err
