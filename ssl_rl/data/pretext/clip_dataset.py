"""Temporal-task samples: u frames of one video, in temporal order, augmented, not permuted."""

from __future__ import annotations

import logging
import multiprocessing
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.pretext.clip_transform import ClipTransform
from ssl_rl.data.pretext.two_stage import RawSample, TwoStagePretext
from ssl_rl.data.readers.any_video import AnyVideoSource
from ssl_rl.data.readers.video_io import (
    CorruptVideoError,
    FrameCountMismatchError,
    VideoSource,
    VideoTooShortError,
)

logger = logging.getLogger(__name__)


def evenly_spaced_indices(num_frames: int, count: int, phase: float = 0.5) -> list[int]:
    """The frames at ``phase`` (0 … 1) of ``count`` equal segments of the video: by default
    their centres (deterministic)."""
    return [int((k + phase) * num_frames / count) for k in range(count)]


def random_sorted_indices(
    num_frames: int, count: int, generator: torch.Generator | None = None
) -> list[int]:
    """``count`` distinct frames drawn uniformly from the whole video, sorted in time [paper]."""
    chosen = torch.randperm(num_frames, generator=generator)[:count]
    return sorted(chosen.tolist())


class ClipDataset(Dataset[RawSample]):
    """Item i: u frames of ``samples[i]`` in temporal order, unpermuted, through the worker stage
    (``transform.sample``: uint8 (u, 3, f, f) and the colour draws; ``transform.finish`` of a
    collated batch gives float32 (B, u, 3, f, f)).

    ``samples`` are AVI files or frame folders (see :class:`AnyVideoSource`). Frames are drawn
    at random from the whole video when ``transform.train``, evenly spaced otherwise (the fixed
    preprocessing of the policy's validation set). ``clips_per_video`` K > 1 (fixed clips only)
    makes K items of every video, item i being clip i mod K of video i // K: the evenly spaced
    grid shifted to phase (c + 1/2) / K of its segments, so a small validation split gives K
    times as many fixed samples. A corrupt video or one shorter than u frames
    is logged, counted (``skipped_count`` over all workers, ``stats`` per process by reason) and
    replaced by the next sample; ``max_consecutive_failures`` bad samples in a row raise a
    DatasetError. Randomness: see :meth:`_draw_generator`.
    """

    def __init__(
        self,
        samples: Sequence[Path | str],
        num_frames: int = 8,
        transform: ClipTransform | None = None,
        seed: int = 0,
        source: VideoSource | None = None,
        max_consecutive_failures: int = 20,
        clips_per_video: int = 1,
    ) -> None:
        if not samples:
            raise DatasetError("ClipDataset got no videos: check the temporal dataset's lists")
        if num_frames < 1:
            raise ValueError(f"num_frames (u) must be >= 1, got {num_frames}")
        self.transform = transform if transform is not None else ClipTransform()
        if clips_per_video < 1 or (clips_per_video > 1 and self.transform.train):
            raise ValueError(
                f"clips_per_video must be 1, or > 1 with fixed clips (transform.train=False); "
                f"got {clips_per_video} with train={self.transform.train}"
            )
        self.samples = [Path(s) for s in samples]
        self.num_frames = num_frames
        self.clips_per_video = clips_per_video
        self.seed = seed
        self.source = source if source is not None else AnyVideoSource()
        self.max_consecutive_failures = max_consecutive_failures
        # Per process: bad files by reason, substitutions, corrected frame counts.
        self.stats: Counter[str] = Counter()
        self._bad: dict[Path, str] = {}
        self._skipped_total = multiprocessing.get_context().Value("q", 0)

    def __len__(self) -> int:
        return len(self.samples) * self.clips_per_video

    @property
    def skipped_count(self) -> int:
        """Unusable videos found so far, summed over the main process and all workers."""
        return int(self._skipped_total.value)

    def summary(self) -> str:
        """One line for the training log."""
        return f"{len(self.samples)} videos, {self.skipped_count} unusable video(s) skipped"

    def __getitem__(self, index: int) -> RawSample:
        generator = self._draw_generator()
        video, clip_index = divmod(index, self.clips_per_video)
        tried = []
        for attempt in range(self.max_consecutive_failures):
            path = self.samples[(video + attempt) % len(self.samples)]
            tried.append(path)
            if path not in self._bad:
                try:
                    clip = self._load(path, generator, clip_index)
                except (CorruptVideoError, VideoTooShortError) as error:
                    self._mark_bad(path, error)
                else:
                    if attempt:
                        self.stats["substituted"] += 1
                    return clip
        raise DatasetError(
            f"{len(tried)} consecutive videos could not be used, starting at sample {index} "
            f"({tried[0]}); first reasons: "
            + "; ".join(f"{p.name}: {self._bad.get(p, '?')}" for p in tried[:3])
            + ". Check the dataset (or extract frames again)."
        )

    def frame_indices(
        self,
        num_frames: int,
        path: Path,
        generator: torch.Generator | None,
        clip_index: int = 0,
    ) -> list[int]:
        """Which frames of a video of ``num_frames`` frames one sample (fixed clip
        ``clip_index``) uses."""
        if num_frames < self.num_frames:
            raise VideoTooShortError(path, num_frames, self.num_frames)
        if self.transform.train:
            return random_sorted_indices(num_frames, self.num_frames, generator)
        phase = (clip_index + 0.5) / self.clips_per_video
        return evenly_spaced_indices(num_frames, self.num_frames, phase)

    def _load(
        self, path: Path, generator: torch.Generator | None, clip_index: int = 0
    ) -> RawSample:
        indices = self.frame_indices(self.source.num_frames(path), path, generator, clip_index)
        crops = self._crops_only(path, indices, generator)
        if crops is not None:
            return crops
        try:
            frames = self.source.read_frames(path, indices)
        except FrameCountMismatchError as error:
            # The container over-reported its length; the source now knows the true count.
            self.stats["frame_count_corrected"] += 1
            logger.info("%s; sampling again from the decodable frames", error)
            indices = self.frame_indices(self.source.num_frames(path), path, generator, clip_index)
            try:
                frames = self.source.read_frames(path, indices)
            except FrameCountMismatchError as again:
                raise CorruptVideoError(str(again)) from again
        return self.transform.sample(frames, generator=generator)

    def _crops_only(
        self, path: Path, indices: list[int], generator: torch.Generator | None
    ) -> RawSample | None:
        """Prepared frames that need no resampling: only the crop windows are read (the same
        draws and pixels as reading whole frames); None for other sources."""
        reader = self.source.crop_reader(path) if isinstance(self.source, AnyVideoSource) else None
        if reader is None:
            return None
        height, width = reader.frame_size(path)
        if not self.transform.is_a_crop(height, width):
            return None
        tops, lefts = self.transform.crop_corners(len(indices), height, width, generator)
        frames = reader.read_crops(path, indices, tops, lefts, self.transform.crop)
        return self.transform.ship(frames, generator)

    def _mark_bad(self, path: Path, error: DatasetError) -> None:
        reason = "too_short" if isinstance(error, VideoTooShortError) else "corrupt"
        self._bad[path] = str(error)
        self.stats[reason] += 1
        with self._skipped_total.get_lock():
            self._skipped_total.value += 1
        logger.warning(
            "skipping video (%s): %s [skipped in this process so far: %s]",
            reason,
            error,
            dict(self.stats),
        )

    def _draw_generator(self) -> torch.Generator | None:
        """A private generator for one item, seeded by ``seed`` and one draw of torch's RNG.

        torch's global RNG differs per DataLoader worker and epoch (and per draw under
        ``SeededDraws``), so items never share randomness across workers, and runs are
        reproducible under ``seed_everything``. Deterministic mode draws nothing.
        """
        if not self.transform.train:
            return None
        draw = int(torch.randint(0, 2**62, ()).item())
        state = np.random.SeedSequence([self.seed, draw]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))


@dataclass(frozen=True)
class ClipPretext(TwoStagePretext):
    """A task's data from videos: ``num_frames`` frames in temporal order, unpermuted, each
    through ``transform`` (a partial of :class:`ClipTransform` missing only ``train``).

    ``val_views``: fixed clips per validation video (evenly spaced grids at that many phases),
    so that a small test split is not a large step of the accuracy per video. Samples that are
    prepared uint8 arrays (``.npy``, ``python -m ssl_rl.data.prepare_frames --format uint8``)
    are stored at the transform's :attr:`~ClipTransform.prescaled_short_side` and read through
    :meth:`ClipTransform.prescaled`: a crop, no decode and no resampling.
    """

    transform: Callable[..., ClipTransform]
    num_frames: int = 8
    val_views: int = 1

    def dataset(
        self, samples: Sequence[Path], train: bool, seed: int, views: int = 1
    ) -> ClipDataset:
        transform = self.transform(train=train)
        if samples and all(Path(s).suffix == ".npy" for s in samples):
            transform = transform.prescaled()
            check_array_short_side(Path(samples[0]), transform.resize_short)
        return ClipDataset(
            list(samples), self.num_frames, transform, seed=seed, clips_per_video=views
        )

    def finish(self, batch: RawSample) -> torch.Tensor:
        """The device stage of a collated batch of this task's clips (train or fixed)."""
        return self.transform(train=True).finish(batch)


def check_array_short_side(array_file: Path, short_side: int) -> None:
    """Refuses prepared uint8 frames stored at another size than the transform needs."""
    shape = np.load(array_file, mmap_mode="r").shape
    if len(shape) != 4 or min(shape[1:3]) != short_side:
        raise DatasetError(
            f"{array_file}: prepared frames of shape {shape} (T, H, W, 3), but this clip "
            f"transform needs a short side of {short_side} px; prepare them again for it: "
            f"python -m ssl_rl.data.prepare_frames --format uint8 --short-side {short_side} "
            f"--src <videos> --dst <new folder>"
        )
