"""Frame access for videos: AVI files decoded with PyAV, or folders of pre-extracted JPEG frames
(uint8 frame arrays: :mod:`ssl_rl.data.readers.video_arrays`).

Every source returns frames as a uint8 tensor of shape (len(indices), 3, H, W), RGB, channels
first like torchvision: a channels-first view of channels-last memory, the layout torch's fast
uint8 resize works in (see ClipTransform). Frame indices are
0-based ordinals in decoding order, which is also how frame dumps are numbered
(``img_00001.jpg`` holds frame 0), so an AVI and its extracted folder give the same frames.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Protocol, runtime_checkable

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from PIL import Image

from ssl_rl.data.errors import DatasetError

logger = logging.getLogger(__name__)


class CorruptVideoError(DatasetError):
    """A video (or frame folder) cannot be decoded."""


class VideoTooShortError(DatasetError):
    """A video has fewer frames than one sample needs."""

    def __init__(self, path: Path, num_frames: int, needed: int) -> None:
        super().__init__(
            f"{path}: has {num_frames} frames but a clip needs u={needed} distinct frames"
        )
        self.path, self.num_frames, self.needed = path, num_frames, needed


class FrameCountMismatchError(DatasetError):
    """Decoding ended before the frame count the container promised (e.g. a truncated file).

    The source has already corrected its cached count to ``actual``: sampling again works.
    """

    def __init__(self, path: Path, expected: int, actual: int) -> None:
        super().__init__(
            f"{path}: the container reports {expected} frames but only {actual} decode"
        )
        self.path, self.expected, self.actual = path, expected, actual


class VideoSource(ABC):
    """Random access to the frames of one kind of video storage; caches per-path metadata."""

    @abstractmethod
    def num_frames(self, path: Path) -> int:
        """Number of frames of the video at ``path``."""

    @abstractmethod
    def read_frames(self, path: Path, indices: Sequence[int]) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 (len(indices), 3, H, W)."""


def _check_indices(path: Path, indices: Sequence[int]) -> list[int]:
    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        raise ValueError(f"{path}: no frame indices requested")
    if wanted[0] < 0:
        raise ValueError(f"{path}: negative frame index {wanted[0]}")
    return wanted


@dataclass
class _AviInfo:
    """What one demux pass over an AVI tells us; cached per path."""

    num_frames: int
    # Frame ordinals of the keyframes, or None when seeking cannot be trusted for this stream
    # (B-frames, irregular or missing timestamps): then frames are decoded from the start.
    keyframes: list[int] | None
    start_pts: int = 0
    pts_step: int = 1


@dataclass
class _OpenVideo:
    """A video open for decoding: its container and video stream, and its demux ``info``."""

    path: Path
    info: _AviInfo
    container: av.container.InputContainer
    stream: av.VideoStream


# Decodes the wanted frame ordinals (sorted, distinct) of an open video.
_Strategy = Callable[[_OpenVideo, list[int]], dict[int, np.ndarray]]


class _SeekMismatchError(Exception):
    """After a seek the decoder did not land where the demux pass said: fall back to no seeking."""


_reformatter: tuple[int, VideoReformatter] | None = None  # (owning pid, reformatter)


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a decoded frame, converted on the calling thread.

    One single-threaded reformatter per process keeps FFmpeg's conversion context between
    frames; ``frame.to_ndarray`` sets up a new, multi-threaded one for every frame (several
    times slower), and a thread pool inherited through fork by a DataLoader worker deadlocks.
    """
    global _reformatter
    if _reformatter is None or _reformatter[0] != os.getpid():
        _reformatter = (os.getpid(), VideoReformatter())
    return _reformatter[1].reformat(frame, format="rgb24", threads=1).to_ndarray()


class AviVideoSource(VideoSource):
    """Decodes AVI (or any FFmpeg-readable) files with PyAV, touching only the needed frames.

    With ``seek=True`` and a stream without B-frames whose timestamps count frames, each
    requested frame is reached by seeking to the last keyframe before it whenever that skips
    frames, and decoding forward; otherwise (UCF-101's packed B-frames, for instance) frames are
    decoded from the start and decoding stops after the last requested one. Both give the frames
    a full sequential decode gives.
    """

    def __init__(self, seek: bool = True, decoder_threads: int = 1) -> None:
        self.seek = seek
        self.decoder_threads = decoder_threads
        self._info: dict[Path, _AviInfo] = {}

    def num_frames(self, path: Path) -> int:
        return self._probe(Path(path)).num_frames

    def read_frames(self, path: Path, indices: Sequence[int]) -> torch.Tensor:
        path = Path(path)
        info = self._probe(path)
        wanted = _check_indices(path, indices)
        if wanted[-1] >= info.num_frames:
            raise ValueError(
                f"{path}: frame index {wanted[-1]} out of range ({info.num_frames} frames)"
            )
        decoded = None
        if self.seek and info.keyframes is not None:
            try:
                decoded = self._decode(path, info, wanted, self._decode_seeking)
            except _SeekMismatchError:
                logger.debug("%s: seeking is unreliable here, decoding from the start", path)
                info.keyframes = None
        if decoded is None:
            decoded = self._decode(path, info, wanted, self._decode_from_start)
        try:
            array = np.stack([decoded[i] for i in indices])
        except ValueError as error:
            raise CorruptVideoError(f"{path}: frames of different sizes ({error})") from error
        return torch.from_numpy(array).permute(0, 3, 1, 2)

    def _decode(
        self,
        path: Path,
        info: _AviInfo,
        wanted: list[int],
        strategy: _Strategy,
    ) -> dict[int, np.ndarray]:
        try:
            with av.open(str(path)) as container:
                stream = self._video_stream(container, path)
                return strategy(_OpenVideo(path, info, container, stream), wanted)
        except av.FFmpegError as error:
            raise CorruptVideoError(f"{path}: cannot decode the video ({error})") from error

    def _video_stream(self, container: av.container.InputContainer, path: Path) -> av.VideoStream:
        if not container.streams.video:
            raise CorruptVideoError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        stream.codec_context.thread_count = self.decoder_threads
        return stream

    def _probe(self, path: Path) -> _AviInfo:
        cached = self._info.get(path)
        if cached is not None:
            return cached
        try:
            info = self._probe_uncached(path)
        except av.FFmpegError as error:
            raise CorruptVideoError(f"{path}: cannot open the video ({error})") from error
        if info.num_frames == 0:
            raise CorruptVideoError(f"{path}: no decodable frames")
        self._info[path] = info
        return info

    def _probe_uncached(self, path: Path) -> _AviInfo:
        with av.open(str(path)) as container:
            stream = self._video_stream(container, path)
            header_count = stream.frames
            has_b_frames = bool(stream.codec_context.has_b_frames)
            packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size > 0]
        keyframes, start, step = None, 0, 1
        if not has_b_frames:
            keyframes, start, step = _keyframes_if_regular(packets)
        if header_count > 0 and header_count == len(packets):
            count = header_count
        elif keyframes is not None:
            count = len(packets)  # one packet per frame, checked by _keyframes_if_regular
        else:
            count = self._count_by_decoding(path)
        return _AviInfo(count, keyframes, start, step)

    def _count_by_decoding(self, path: Path) -> int:
        with av.open(str(path)) as container:
            stream = self._video_stream(container, path)
            return sum(1 for _ in container.decode(stream))

    def _decode_from_start(self, video: _OpenVideo, wanted: list[int]) -> dict[int, np.ndarray]:
        wanted_set, last = set(wanted), wanted[-1]
        out: dict[int, np.ndarray] = {}
        decoded = 0
        for ordinal, frame in enumerate(video.container.decode(video.stream)):
            decoded = ordinal + 1
            if ordinal in wanted_set:
                out[ordinal] = frame_to_rgb(frame)
            if ordinal >= last:
                return out
        self._shortfall(video.path, video.info, decoded)
        raise AssertionError("unreachable")

    def _decode_seeking(self, video: _OpenVideo, wanted: list[int]) -> dict[int, np.ndarray]:
        container, stream, info = video.container, video.stream, video.info
        assert info.keyframes is not None
        wanted_set = set(wanted)
        out: dict[int, np.ndarray] = {}
        position = -1  # ordinal of the last decoded frame
        frames: Iterable[av.VideoFrame] | None = None
        for target in wanted:
            if target in out:
                continue
            keyframe = info.keyframes[bisect.bisect_right(info.keyframes, target) - 1]
            seek_to = None
            if frames is None or keyframe > position + 1:
                seek_to = keyframe
                container.seek(
                    info.start_pts + keyframe * info.pts_step,
                    stream=stream,
                    backward=True,
                    any_frame=False,
                )
                frames = container.decode(stream)
            for frame in frames:
                if frame.pts is None:
                    raise _SeekMismatchError
                ordinal, remainder = divmod(frame.pts - info.start_pts, info.pts_step)
                if remainder or (seek_to is not None and ordinal != seek_to):
                    raise _SeekMismatchError
                seek_to, position = None, ordinal
                if ordinal in wanted_set:
                    out[ordinal] = frame_to_rgb(frame)
                if ordinal >= target:
                    break
            else:
                self._shortfall(video.path, info, position + 1)
        return out

    def _shortfall(self, path: Path, info: _AviInfo, decoded: int) -> None:
        """Decoding ended early: remember the true count and tell the caller to sample again."""
        if decoded == 0:
            raise CorruptVideoError(f"{path}: no decodable frames")
        expected = info.num_frames
        info.num_frames = min(expected, decoded)
        if info.keyframes is not None:
            info.keyframes = [k for k in info.keyframes if k < info.num_frames] or None
        raise FrameCountMismatchError(path, expected, decoded)


def _keyframes_if_regular(
    packets: list[tuple[int | None, bool]],
) -> tuple[list[int] | None, int, int]:
    """Keyframe ordinals when packet timestamps are start + k * step (one frame each), else None."""
    if not packets or any(pts is None for pts, _ in packets):
        return None, 0, 1
    pts = [p for p, _ in packets if p is not None]
    step = pts[1] - pts[0] if len(pts) > 1 else 1
    if step <= 0 or any(b - a != step for a, b in pairwise(pts)):
        return None, 0, 1
    keyframes = [k for k, (_, is_key) in enumerate(packets) if is_key]
    if not keyframes or keyframes[0] != 0:
        return None, 0, 1
    return keyframes, pts[0], step


class FrameFolderSource(VideoSource):
    """A folder of JPEG frames named by ``template`` from ``first_index`` (``img_00001.jpg``...)."""

    def __init__(self, template: str = "img_{:05d}.jpg", first_index: int = 1) -> None:
        prefix, _, rest = template.partition("{")
        _, _, suffix = rest.partition("}")
        self.template = template
        self.first_index = first_index
        self._name_pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
        self._counts: dict[Path, int] = {}

    def num_frames(self, path: Path) -> int:
        path = Path(path)
        cached = self._counts.get(path)
        if cached is not None:
            return cached
        if not path.is_dir():
            raise CorruptVideoError(f"{path}: frame folder does not exist")
        numbers = sorted(
            int(match.group(1))
            for entry in path.iterdir()
            if (match := self._name_pattern.match(entry.name))
        )
        expected = list(range(self.first_index, self.first_index + len(numbers)))
        if not numbers:
            raise CorruptVideoError(f"{path}: no frames named like {self.template!r}")
        if numbers != expected:
            gaps = sorted(set(range(self.first_index, numbers[-1] + 1)) - set(numbers))[:5]
            raise CorruptVideoError(
                f"{path}: frame files are not consecutive from "
                f"{self.template.format(self.first_index)} (missing e.g. "
                f"{[self.template.format(g) for g in gaps]}); re-extract this video"
            )
        self._counts[path] = len(numbers)
        return len(numbers)

    def read_frames(self, path: Path, indices: Sequence[int]) -> torch.Tensor:
        path = Path(path)
        count = self.num_frames(path)
        wanted = _check_indices(path, indices)
        if wanted[-1] >= count:
            raise ValueError(f"{path}: frame index {wanted[-1]} out of range ({count} frames)")
        decoded = {
            i: self._read_jpeg(path / self.template.format(i + self.first_index)) for i in wanted
        }
        try:
            array = np.stack([decoded[i] for i in indices])
        except ValueError as error:
            raise CorruptVideoError(f"{path}: frames of different sizes ({error})") from error
        return torch.from_numpy(array).permute(0, 3, 1, 2)

    @staticmethod
    def _read_jpeg(file: Path) -> np.ndarray:
        # PIL gives (H, W, 3): the channels-last memory torch's fast uint8 resize wants.
        try:
            with Image.open(file) as image:
                return np.asarray(image.convert("RGB"))
        except OSError as error:
            raise CorruptVideoError(f"{file}: cannot decode the JPEG frame ({error})") from error


@runtime_checkable
class CropReader(Protocol):
    """A source that reads only the crop windows of frames (see ``ArrayVideoSource``)."""

    def frame_size(self, path: Path) -> tuple[int, int]: ...

    def read_crops(
        self,
        path: Path,
        indices: Sequence[int],
        tops: Sequence[int],
        lefts: Sequence[int],
        size: int,
    ) -> torch.Tensor: ...


def write_avi(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: int = 25,
    codec: str = "mpeg4",
    gop_size: int = 12,
    max_b_frames: int = 0,
    bits_per_pixel: float = 1.0,
) -> int:
    """Encodes RGB uint8 (H, W, 3) frames into an AVI (MPEG-4 Part 2 like UCF-101's Xvid).

    Single-threaded, so the same frames always give the same bytes. Returns the frame count.
    """
    count = 0
    with av.open(str(path), "w", format="avi") as container:
        stream: av.VideoStream | None = None
        for frame in frames:
            if stream is None:
                height, width = frame.shape[:2]
                added = container.add_stream(codec, rate=fps)
                assert isinstance(added, av.VideoStream), f"{codec} is not a video codec"
                stream = added
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.bit_rate = int(bits_per_pixel * width * height * fps)
                stream.codec_context.gop_size = gop_size
                stream.codec_context.max_b_frames = max_b_frames
                stream.codec_context.thread_count = 1
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            container.mux(stream.encode(video_frame))
            count += 1
        if stream is None:
            raise ValueError(f"{path}: no frames to write")
        container.mux(stream.encode(None))
    return count
