"""Decode every video of a UCF-101-style tree once into stored frames, read fast at train time.

``<src>/<Class>/<video>.avi`` (UCF-101 and HMDB-51 both have this layout) becomes

- ``--format jpeg`` (default): ``<dst>/<Class>/<video>/img_00001.jpg, ...`` (frame k of the
  stored frames is ``img_{k+1:05d}.jpg``, as :class:`FrameFolderSource` reads);
- ``--format uint8``: ``<dst>/<Class>/<video>.npy``, one (T, H, W, 3) uint8 RGB array per video,
  memory-mapped by :class:`~ssl_rl.data.readers.video_arrays.ArrayVideoSource`.

Stored frames are every ``--stride``-th decoded frame (all by default), the short side brought
down to ``--short-side`` (or to the size ``--for-transform RESIZE_SHORT,CROP,FRAME_SIZE`` asks
for: paper scale 128,112,64 → 73, so the clip transform's crop-then-resize becomes a crop).
Outputs are written under ``.partial`` names and renamed when complete, so an interrupted run
resumes where it stopped; ``<dst>/prepared.json`` records source, settings, sizes and the
videos that could not be decoded (skipped; the exit code is then 1).

    python -m ssl_rl.data.prepare_frames --src UCF-101 --dst UCF-101-u8 --format uint8 \\
        --for-transform 128,112,64 --workers 8
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from pathlib import Path

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepared.command_line import run_command
from ssl_rl.data.prepared.manifest import FORMAT_VERSION, Manifest, canonical_command
from ssl_rl.data.prepared.runner import PARTIAL_SUFFIX, Job, RunStats, Work, run_preparation
from ssl_rl.data.prepared.video_frames import (
    FRAME_TEMPLATE,
    resized_size,
    uint8_short_side,
    write_jpeg_frames,
    write_uint8_array,
)

__all__ = [
    "FRAME_TEMPLATE",
    "PARTIAL_SUFFIX",
    "extract_all",
    "extraction_summary",
    "find_videos",
    "main",
    "resized_size",
    "uint8_short_side",
]

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".avi",)
FORMATS = ("jpeg", "uint8")


def extraction_summary(stats: RunStats) -> str:
    """One line on what :func:`extract_all` did and what ``dst`` holds afterwards."""
    return (
        f"{stats.total} videos: {stats.written} extracted ({stats.units} frames), "
        f"{stats.already_done} already done, {len(stats.skipped)} failed; "
        f"{stats.files} prepared videos, {stats.bytes / 2**20:.1f} MiB"
    )


def find_videos(src: Path) -> list[Path]:
    """The videos one level below the class folders, in a stable order."""
    return sorted(
        path for path in src.glob("*/*") if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file()
    )


def output_path(src: Path, dst: Path, video: Path, format: str) -> Path:
    """Where ``video`` is stored: a frame folder (jpeg) or an ``.npy`` file (uint8)."""
    stem = dst / video.parent.relative_to(src) / video.stem
    return stem.with_name(stem.name + ".npy") if format == "uint8" else stem


def extract_all(
    src: Path | str,
    dst: Path | str,
    workers: int = 4,
    short_side: int | None = None,
    quality: int = 90,
    progress: bool = True,
    format: str = "jpeg",
    stride: int = 1,
) -> RunStats:
    """Stores every video under ``src`` not stored yet under ``dst``, in parallel.

    The stats count videos (``total``, ``written``, ``already_done``) and frames (``units``);
    ``skipped`` lists the videos that could not be decoded."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {format!r}")
    if stride < 1 or (short_side is not None and short_side < 1):
        raise ValueError(f"--stride ({stride}) and --short-side ({short_side}) must be >= 1")
    if not src.is_dir():
        raise DatasetError(f"video folder {src} does not exist (--src)")
    videos = find_videos(src)
    if not videos:
        raise DatasetError(f"no {'/'.join(VIDEO_SUFFIXES)} files in {src}/<Class>/ (--src)")
    kind = f"video_{format}"
    settings: dict[str, int | None] = {"short_side": short_side, "stride": stride}
    work: Work
    if format == "jpeg":
        settings["quality"] = quality
        work = functools.partial(
            write_jpeg_frames, short_side=short_side, stride=stride, quality=quality
        )
    else:
        work = functools.partial(write_uint8_array, short_side=short_side, stride=stride)
    manifest = Manifest(
        kind=kind,
        version=FORMAT_VERSION[kind],
        source=str(src),
        settings=settings,
        command=canonical_command(kind, dst, settings, src),
    )
    jobs = [Job(video, output_path(src, dst, video, format)) for video in videos]
    stats = run_preparation(
        jobs,
        work,
        dst,
        manifest,
        workers,
        progress,
        desc=f"storing frames ({format})",
        unit="video",
    )
    logger.info("frames of %s stored in %s: %s", src, dst, extraction_summary(stats))
    return stats


def _for_transform(text: str) -> int:
    try:
        resize_short, crop, frame_size = (int(part) for part in text.split(","))
        return uint8_short_side(resize_short, crop, frame_size)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected RESIZE_SHORT,CROP,FRAME_SIZE such as 128,112,64, got {text!r} ({error})"
        ) from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="folder of <Class>/*.avi")
    parser.add_argument("--dst", type=Path, required=True, help="output folder")
    parser.add_argument("--format", choices=FORMATS, default="jpeg", help="stored frame format")
    parser.add_argument("--workers", type=int, default=4, help="parallel processes")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--short-side", type=int, default=None, help="downscale short side to S")
    size.add_argument(
        "--for-transform",
        type=_for_transform,
        dest="short_side",
        metavar="RESIZE_SHORT,CROP,FRAME_SIZE",
        help="short side that makes the clip transform's crop-then-resize a crop "
        "(paper scale: 128,112,64 → 73)",
    )
    parser.add_argument("--stride", type=int, default=1, help="keep every K-th frame")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (--format jpeg)")
    return run_command(parser, argv, extract_all, extraction_summary)


if __name__ == "__main__":
    sys.exit(main())
