"""Single-frame views of labelled videos, for retrieval and action-recognition transfer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import Dataset

from ssl_rl.data.pretext.clip_dataset import evenly_spaced_indices
from ssl_rl.data.readers.any_video import AnyVideoSource
from ssl_rl.data.readers.video_io import VideoSource

FrameTransform = Callable[[torch.Tensor], torch.Tensor]


class VideoFramesDataset(Dataset[tuple[torch.Tensor, int]]):
    """Item i: frames of video i with its label.

    ``mode="evenly"``: the ``frames_per_video`` centre frames of equal segments, stacked to
    (F, 3, h, w) (10 per video for retrieval, 25 for TSN-style testing [paper]). A video with
    fewer frames repeats some. ``mode="random"``: one frame drawn at random, (3, h, w), a
    fresh draw every epoch (single-frame fine-tuning). Samples are videos or frame folders.
    """

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        transform: FrameTransform,
        mode: Literal["evenly", "random"] = "evenly",
        frames_per_video: int = 10,
        source: VideoSource | None = None,
    ) -> None:
        if mode not in ("evenly", "random"):
            raise ValueError(f"mode must be 'evenly' or 'random', got {mode!r}")
        if frames_per_video < 1:
            raise ValueError(f"frames_per_video must be >= 1, got {frames_per_video}")
        self.samples = [(Path(p), int(label)) for p, label in samples]
        self.transform = transform
        self.mode = mode
        self.frames_per_video = frames_per_video
        self.source = source if source is not None else AnyVideoSource()

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        count = self.source.num_frames(path)
        if self.mode == "random":
            frame = int(torch.randint(count, ()).item())
            return self.transform(self.source.read_frames(path, [frame])[0]), label
        indices = evenly_spaced_indices(count, self.frames_per_video)
        frames = self.source.read_frames(path, indices)
        return torch.stack([self.transform(f) for f in frames]), label
