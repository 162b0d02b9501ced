"""Decode every video of a UCF-101-style tree once into JPEG frame folders.

``<src>/<Class>/<video>.avi`` → ``<dst>/<Class>/<video>/img_00001.jpg, img_00002.jpg, ...``
(frame k of the decoding order is ``img_{k+1:05d}.jpg``, as :class:`FrameFolderSource` reads).
Each video is written to ``<video>.partial`` and renamed when complete, so an interrupted run
resumes where it stopped and a finished folder is never half-written.

    python -m ssl_rl.data.prepare_frames --src UCF-101 --dst UCF-101-frames --workers 8
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import av
from PIL import Image
from tqdm import tqdm

from ssl_rl.data.readers.video_io import frame_to_rgb

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".avi",)
FRAME_TEMPLATE = "img_{:05d}.jpg"
PARTIAL_SUFFIX = ".partial"


@dataclass
class ExtractionStats:
    """What one :func:`extract_all` run did."""

    videos: int = 0
    extracted: int = 0
    already_done: int = 0
    frames_written: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.videos} videos: {self.extracted} extracted ({self.frames_written} frames), "
            f"{self.already_done} already done, {len(self.failed)} failed"
        )


def find_videos(src: Path) -> list[Path]:
    """The videos one level below the class folders, in a stable order."""
    return sorted(
        path for path in src.glob("*/*") if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file()
    )


def frame_folder(src: Path, dst: Path, video: Path) -> Path:
    return dst / video.parent.relative_to(src) / video.stem


def resized_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side brought down to ``short_side``; never upscales."""
    if short_side is None or min(width, height) <= short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def extract_video(video: Path, out_dir: Path, short_side: int | None, quality: int = 90) -> int:
    """Writes every frame of ``video`` into ``out_dir`` atomically; returns the frame count."""
    partial = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted run
    partial.mkdir(parents=True)
    try:
        count = _write_frames(video, partial, short_side, quality)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(out_dir)
    return count


def _write_frames(video: Path, folder: Path, short_side: int | None, quality: int) -> int:
    count = 0
    with av.open(str(video)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for frame in container.decode(stream):
            image = Image.fromarray(frame_to_rgb(frame))
            size = resized_size(image.width, image.height, short_side)
            if size != image.size:
                image = image.resize(size, Image.Resampling.BILINEAR)
            count += 1
            image.save(folder / FRAME_TEMPLATE.format(count), quality=quality)
    if count == 0:
        raise ValueError("no decodable frames")
    return count


def _extract_job(job: tuple[Path, Path, int | None, int]) -> tuple[Path, int, str | None]:
    video, out_dir, short_side, quality = job
    try:
        return video, extract_video(video, out_dir, short_side, quality), None
    except (av.FFmpegError, OSError, ValueError) as error:
        return video, 0, f"{type(error).__name__}: {error}"


def extract_all(
    src: Path | str,
    dst: Path | str,
    workers: int = 4,
    short_side: int | None = None,
    quality: int = 90,
    progress: bool = True,
) -> ExtractionStats:
    """Extracts every video under ``src`` not extracted yet under ``dst``, in parallel."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"video folder {src} does not exist (--src)")
    videos = find_videos(src)
    if not videos:
        raise FileNotFoundError(f"no {'/'.join(VIDEO_SUFFIXES)} files in {src}/<Class>/ (--src)")
    stats = ExtractionStats(videos=len(videos))
    jobs = []
    for video in videos:
        out_dir = frame_folder(src, dst, video)
        if out_dir.is_dir():
            stats.already_done += 1
        else:
            jobs.append((video, out_dir, short_side, quality))
    if jobs:
        bar = tqdm(total=len(jobs), desc="extracting frames", unit="video", disable=not progress)
        if workers > 1:
            with multiprocessing.get_context().Pool(workers) as pool:
                _collect(pool.imap_unordered(_extract_job, jobs, chunksize=4), stats, bar)
        else:
            _collect(map(_extract_job, jobs), stats, bar)
        bar.close()
    for video, reason in stats.failed:
        logger.error("could not extract %s: %s", video, reason)
    logger.info("frame extraction into %s: %s", dst, stats.summary())
    return stats


def _collect(
    results: Iterable[tuple[Path, int, str | None]], stats: ExtractionStats, bar: tqdm
) -> None:
    for video, frames, error in results:
        if error is None:
            stats.extracted += 1
            stats.frames_written += frames
        else:
            stats.failed.append((video, error))
        bar.update()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="folder of <Class>/*.avi")
    parser.add_argument("--dst", type=Path, required=True, help="output folder of frame folders")
    parser.add_argument("--workers", type=int, default=4, help="parallel processes")
    parser.add_argument("--short-side", type=int, default=None, help="downscale short side to S")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    stats = extract_all(args.src, args.dst, args.workers, args.short_side, args.quality)
    print(stats.summary())
    for video, reason in stats.failed:
        print(f"FAILED {video}: {reason}", file=sys.stderr)
    return 1 if stats.failed else 0


if __name__ == "__main__":
    sys.exit(main())
