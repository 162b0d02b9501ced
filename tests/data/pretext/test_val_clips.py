"""The temporal task's pretext validation set: several fixed clips per test video."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from ssl_rl.data.pretext.clip_dataset import ClipDataset, evenly_spaced_indices
from ssl_rl.data.pretext.clip_transform import ClipTransform
from ssl_rl.data.readers.video_io import AviVideoSource
from ssl_rl.run.training import build_data_and_model
from tests.data.pretext.finished import finished
from tests.fixtures.videos import make_ucf101_tree

SMALL = {"frame_size": 16, "resize_short": 24, "crop": 20, "jitter": 2}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    tree = make_ucf101_tree(tmp_path_factory.mktemp("ucf"), num_frames=16)
    return [tree.videos[e] for e in sorted(tree.videos)]


class RecordingSource(AviVideoSource):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Path, list[int]]] = []

    def read_frames(self, path: Path, indices: list[int]) -> torch.Tensor:  # type: ignore[override]
        self.calls.append((path, list(indices)))
        return super().read_frames(path, indices)


def test_fixed_clips_shift_the_evenly_spaced_grid(videos: list[Path]) -> None:
    source = RecordingSource()
    transform = ClipTransform(**SMALL, train=False)
    dataset = ClipDataset(videos[:2], 4, transform, source=source, clips_per_video=4)
    assert len(dataset) == 8
    items = [finished(dataset, i) for i in range(len(dataset))]
    assert [path for path, _ in source.calls] == [videos[0]] * 4 + [videos[1]] * 4
    grids = [indices for _, indices in source.calls[:4]]
    assert grids == [evenly_spaced_indices(16, 4, (c + 0.5) / 4) for c in range(4)]
    assert grids[0] == [0, 4, 8, 12] and grids[3] == [3, 7, 11, 15]
    assert len({tuple(g) for g in grids}) == 4
    # Deterministic whatever torch's RNG does; one clip per video is the plain centre grid.
    torch.manual_seed(5)
    assert all(torch.equal(items[i], finished(dataset, i)) for i in range(len(dataset)))
    single = ClipDataset(videos[:2], 4, transform, source=source)
    assert len(single) == 2
    single[1]
    assert source.calls[-1] == (videos[1], evenly_spaced_indices(16, 4))


def test_several_clips_per_video_need_fixed_clips(videos: list[Path]) -> None:
    with pytest.raises(ValueError, match="clips_per_video"):
        ClipDataset(videos, 4, ClipTransform(**SMALL, train=True), clips_per_video=2)
    with pytest.raises(ValueError, match="clips_per_video"):
        ClipDataset(videos, 4, ClipTransform(**SMALL, train=False), clips_per_video=0)


def test_datamodule_validates_on_several_clips_per_test_video(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train(["experiment=st", "data.val_samples=null"])
    module, _ = build_data_and_model(cfg)
    module.prepare_data()
    module.setup("fit")
    clips = int(cfg.tasks.temporal.pretext.val_views)
    assert clips > 1
    temporal = module.val_sets["temporal"]
    test_videos = module.pretext_tasks["temporal"].reader.samples("tasks.temporal.reader")[1]
    assert len(temporal) == clips * len(test_videos)
    assert torch.equal(finished(temporal.dataset, 1), finished(temporal.dataset, 1))
    # The first and last clip of one video (16 frames: segments of 2, so offsets 0 and 1).
    assert not torch.equal(finished(temporal.dataset, 0), finished(temporal.dataset, clips - 1))
    # The policy's X_val keeps one clip per (training) video; the jigsaw one sample per image.
    assert len(module.policy_sets["temporal"]) == cfg.data.policy_holdout
    assert module.policy_sets["temporal"].dataset.clips_per_video == 1
    spatial_val = module.pretext_tasks["spatial"].reader.samples("tasks.spatial.reader")[1]
    assert len(module.val_sets["spatial"]) == len(spatial_val)
