"""Throughput of the spatial-task data pipeline (JPEG decode + jigsaw tiles) on one core.

    python -m benchmarks.image_pipeline [--puzzles 300] [--threads 1]

Demo scale: 128 px synthetic JPEGs, tiles 126 / 3 → 36 px. Paper scale: 500 × 375 JPEGs
(a typical ImageNet size), resize 256, crop 255, tiles 64 px.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ssl_rl.data.pretext.image_parts_dataset import ImagePartsDataset
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.readers.image_folder import ImageFolderIndex, load_rgb
from ssl_rl.data.synthetic.images import ensure_image_dataset, render_image, synthetic_classes

DEMO = {"resize": 128, "crop": 126, "tile_crop": 36, "tile_size": 36}
PAPER = {"resize": 256, "crop": 255, "tile_crop": 64, "tile_size": 64}


def measure_jigsaw_throughput(
    paths: Sequence[Path],
    transform: JigsawTransform,
    num_puzzles: int = 300,
    threads: int = 1,
    warmup: int = 10,
) -> dict[str, float]:
    """Puzzles per second of ``ImagePartsDataset`` in this process, and the decode-only rate."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dataset = ImagePartsDataset(paths, transform)
        for i in range(warmup):
            dataset[i % len(dataset)]
        start = time.perf_counter()
        for i in range(num_puzzles):
            dataset[i % len(dataset)]
        puzzles = num_puzzles / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(num_puzzles):
            load_rgb(dataset.paths[i % len(dataset)], min_size=transform.resize)
        decodes = num_puzzles / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return {"puzzles_per_s": puzzles, "decodes_per_s": decodes}


def _paper_sized_jpegs(root: Path, count: int) -> list[Path]:
    """``count`` synthetic 500 × 375 JPEGs (quality 90), like typical ImageNet photos."""
    root.mkdir(parents=True, exist_ok=True)
    classes = synthetic_classes(10)
    paths = []
    for k in range(count):
        image = render_image(classes[k % 10], 500, np.random.default_rng(k)).crop((0, 62, 500, 437))
        path = root / f"n90000001_{k}.JPEG"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puzzles", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo_root = ensure_image_dataset(
            Path(tmp) / "demo", num_classes=10, train_per_class=10, val_per_class=0, progress=False
        )
        demo_paths = ImageFolderIndex.scan(demo_root / "train").paths
        paper_paths = _paper_sized_jpegs(Path(tmp) / "paper", 50)
        for name, paths, config in [("demo", demo_paths, DEMO), ("paper", paper_paths, PAPER)]:
            for train in (True, False):
                rates = measure_jigsaw_throughput(
                    paths, JigsawTransform(**config, train=train), args.puzzles, args.threads
                )
                print(
                    f"{name:5s} train={train!s:5s} {rates['puzzles_per_s']:7.1f} puzzles/s "
                    f"(decode alone {rates['decodes_per_s']:7.1f}/s) on {args.threads} thread(s)"
                )


if __name__ == "__main__":
    main()
