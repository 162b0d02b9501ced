"""The temporal task's data: u frames of a video in temporal order, unpermuted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ssl_rl.data.pretext.clip_dataset import ClipDataset
from ssl_rl.data.pretext.clip_transform import ClipTransform


@dataclass(frozen=True)
class ClipPretext:
    """Videos → ``(num_frames, 3, frame_size, frame_size)`` clips; permutations reorder them.

    ``val_views``: fixed clips per validation video (evenly spaced grids at that many phases),
    so that a small test split is not a large step of the accuracy per video.
    """

    num_frames: int = 8
    frame_size: int = 64
    resize_short: int = 128
    crop: int = 112
    jitter: int = 4
    channel_split: bool = False
    gray_prob: float = 0.0
    val_views: int = 1

    def dataset(self, samples: Sequence[Path], train: bool, seed: int, views: int = 1) -> Dataset:
        transform = ClipTransform(
            frame_size=self.frame_size,
            resize_short=self.resize_short,
            crop=self.crop,
            jitter=self.jitter,
            channel_split=self.channel_split,
            gray_prob=self.gray_prob,
            train=train,
        )
        return ClipDataset(
            list(samples), self.num_frames, transform, seed=seed, clips_per_video=views
        )
