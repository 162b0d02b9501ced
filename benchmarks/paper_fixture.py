"""Paper-format data for the GPU benchmarks, from what the project and its dependencies ship.

    python -m benchmarks.paper_fixture --root DIR [--photos 600] [--workers N]

Writes ``DIR/imagenet/{train,val}/<wnid>/*.JPEG`` (500 × 375 crops of scikit-learn's two sample
photos: real photo statistics for the JPEG decoder) and ``DIR/ucf101/UCF-101/<Class>/*.avi`` with
``ucfTrainTestlist/`` (the demo video generator at UCF-101's 320 × 240, 25 fps). Preparing them
is left to the project's own commands (``make bench-gpu`` runs ``prepare_images`` and
``prepare_frames``), so the benchmark reads exactly what a user's prepared data gives.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from benchmarks.input_pipeline import make_photos
from ssl_rl.data.synthetic.videos import generate_video_dataset


def make_paper_fixture(root: Path, photos: int, videos_per_class: int, workers: int) -> None:
    make_photos(root / "imagenet" / "train", photos)
    make_photos(root / "imagenet" / "val", max(8, photos // 20))
    # Split 1 tests on the first groups: videos_per_class groups of one clip per class.
    generate_video_dataset(
        root / "ucf101",
        num_classes=10,
        groups=videos_per_class,
        clips_per_group=1,
        num_frames=(50, 80),
        width=320,
        height=240,
        progress=False,
        workers=workers,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--photos", type=int, default=600)
    parser.add_argument("--videos-per-class", type=int, default=24)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    make_paper_fixture(args.root, args.photos, args.videos_per_class, args.workers)
    print(f"paper-format data under {args.root}")


if __name__ == "__main__":
    main()
