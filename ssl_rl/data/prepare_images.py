"""Mirror an ImageFolder tree (ImageNet train or val) with every short side brought down to 256.

``<src>/<class>/<image>`` becomes ``<dst>/<class>/<image>`` (same relative path and file name,
every class folder mirrored, empty ones too, so labels stay aligned); a flat folder of images
(ImageNet val as released) is mirrored flat (detected when ``src`` has no sub-folders, or
forced with ``--flat``). The jigsaw resizes the short side to 256 first anyway, so reading the
mirror gives the same inputs but for the JPEG re-encoding (``--quality``), at a fraction of the
decoding cost. Images are written under ``.partial`` names and renamed when complete, so an
interrupted run resumes; ``<dst>/prepared.json`` records source, settings, sizes and the
images that could not be decoded (skipped; the exit code is then 1).

    python -m ssl_rl.data.prepare_images --src ILSVRC2012/train --dst ILSVRC2012-256/train \\
        --workers 8
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepared.command_line import run_command
from ssl_rl.data.prepared.images import write_resized_image
from ssl_rl.data.prepared.manifest import FORMAT_VERSION, Manifest, canonical_command
from ssl_rl.data.prepared.runner import Job, RunStats, run_preparation
from ssl_rl.data.readers.image_folder import ImageFolderIndex, is_image_file

logger = logging.getLogger(__name__)


def _has_class_folders(src: Path) -> bool:
    return any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(src))


def image_jobs(src: Path, dst: Path, flat: bool) -> tuple[list[Job], list[Path]]:
    """The (image, mirror path) jobs and the folders to mirror (every class, even empty)."""
    if flat:
        names = sorted(e.name for e in os.scandir(src) if is_image_file(e.name) and e.is_file())
        if not names:
            raise DatasetError(f"{src} holds no images directly (--src, --flat)")
        return [Job(src / name, dst / name) for name in names], [dst]
    index = ImageFolderIndex.scan(src, config_key="--src")
    jobs = [Job(path, dst / path.relative_to(src)) for path in index.paths]
    return jobs, [dst / name for name in index.classes]


def prepare_images(
    src: Path | str,
    dst: Path | str,
    short_side: int = 256,
    quality: int = 90,
    workers: int = 4,
    progress: bool = True,
    flat: bool | None = None,
) -> RunStats:
    """Mirrors every image of ``src`` not mirrored yet into ``dst``, in parallel."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if short_side < 1 or not 1 <= quality <= 100:
        raise ValueError(
            f"need --short-side >= 1 and --quality in 1..100, got {short_side}, {quality}"
        )
    if not src.is_dir():
        raise DatasetError(f"image folder {src} does not exist (--src)")
    if dst == src or src in dst.parents:
        raise DatasetError(f"--dst {dst} must not be inside --src {src}: it would become a class")
    if flat is None:
        flat = not _has_class_folders(src)
    jobs, folders = image_jobs(src, dst, flat)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    settings = {"short_side": short_side, "quality": quality, "flat": flat}
    manifest = Manifest(
        kind="images",
        version=FORMAT_VERSION["images"],
        source=str(src),
        settings=settings,
        command=canonical_command("images", dst, settings, src),
    )
    work = functools.partial(write_resized_image, short_side=short_side, quality=quality)
    stats = run_preparation(
        jobs, work, dst, manifest, workers, progress, desc="resizing images", unit="image"
    )
    logger.info("mirror of %s in %s: %s", src, dst, _summary(stats))
    return stats


def _summary(stats: RunStats) -> str:
    return stats.summary("images", "images")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="ImageFolder root (or flat val)")
    parser.add_argument("--dst", type=Path, required=True, help="mirror folder to write")
    parser.add_argument("--short-side", type=int, default=256, help="short side of the mirror")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of resized images")
    parser.add_argument("--workers", type=int, default=4, help="parallel processes")
    parser.add_argument(
        "--flat", action="store_true", default=None, help="images directly in --src (no classes)"
    )
    return run_command(parser, argv, prepare_images, _summary)


if __name__ == "__main__":
    sys.exit(main())
