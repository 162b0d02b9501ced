"""The training loaders' rate with worker processes, on prepared data at paper shapes.

    python -m benchmarks.loader_rate [--workers N] [--batches 20] [--workdir DIR]

The real datasets (the spatial task's jigsaw over a prepared 256 px mirror of ImageNet-sized
photos, the temporal task's clips over prepared uint8 frame arrays of UCF-101-like videos, both
made by ``benchmarks.input_pipeline``) behind torch DataLoaders with ``--workers`` processes
each, batch 256 [paper]; then each batch moved to the device and through the pretext's device
stage (``finish``), as in training. Prints samples/s per task and the device stage's time per
batch. Set ``--workers`` to the cores one GPU has (default: all cores / 2 per task).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from benchmarks.input_pipeline import CLIP, make_photos, make_videos
from ssl_rl.data.prepare_frames import extract_all
from ssl_rl.data.prepare_images import prepare_images
from ssl_rl.data.pretext.clip_dataset import ClipPretext
from ssl_rl.data.pretext.clip_transform import ClipTransform
from ssl_rl.data.pretext.image_parts_dataset import ImagePretext
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform


def _rate(loader: DataLoader, pretext, batches: int, device: torch.device) -> tuple[float, float]:
    """Samples/s the loader delivers, and ms per batch of the device stage."""
    iterator = iter(loader)
    # Past the batches the workers queued while starting (prefetch_factor per worker): what
    # follows comes at the workers' own rate.
    for _ in range(loader.num_workers * (loader.prefetch_factor or 2) + 2):
        next(iterator)
    finish_seconds, samples = 0.0, 0
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
        samples += len(batch["offsets" if "offsets" in batch else "frames"])
        begin = time.perf_counter()
        parts = pretext.finish(moved(batch, pretext, device))
        if device.type == "cuda":
            torch.cuda.synchronize()
        finish_seconds += time.perf_counter() - begin
        del parts
    elapsed = time.perf_counter() - start - finish_seconds
    return samples / elapsed, 1000 * finish_seconds / batches


def moved(batch: dict, pretext, device: torch.device) -> dict:
    """A batch on ``device`` as training moves it: the entries ``finish`` reads on the host
    (``pretext.host_keys``) stay there."""
    return {
        k: v if k in pretext.host_keys else v.to(device, non_blocking=True)
        for k, v in batch.items()
    }


def prepared_fixture(data: Path) -> tuple[list[Path], list[Path]]:
    """The 256 px photo mirror and the uint8 frame arrays of prepared paper_fixture data."""
    mirror = sorted((data / "imagenet" / "train_256").glob("*/*.JPEG"))
    arrays = sorted((data / "ucf101" / "UCF-101-uint8").glob("*/*.npy"))
    return mirror, arrays


def training_pretexts(
    mirror: list[Path], arrays: list[Path], device: torch.device
) -> dict[str, tuple[object, list[Path]]]:
    """Each training input path at paper shapes with its samples; ``decode=device`` on a GPU."""
    tasks: dict[str, tuple[object, list[Path]]] = {
        "spatial": (ImagePretext(partial(JigsawTransform)), mirror),
        "temporal": (ClipPretext(partial(ClipTransform, **CLIP), num_frames=8), arrays),
    }
    if device.type == "cuda":  # JPEGs decoded by nvJPEG in the device stage
        tasks["spatial, decode=device"] = (
            ImagePretext(partial(JigsawTransform), decode="device"),
            mirror,
        )
    return tasks


def _make_prepared_data(
    workdir: Path, args: argparse.Namespace, workers: int
) -> tuple[list[Path], list[Path]]:
    """A 256 px mirror of photos and uint8 frame arrays of videos, made here."""
    originals = make_photos(workdir / "imagenet" / "train", args.photos)
    mirror_root = workdir / "mirror"
    prepare_images(
        workdir / "imagenet" / "train", mirror_root, 256, workers=workers, progress=False
    )
    mirror = [mirror_root / p.parent.name / p.name for p in originals]
    videos = make_videos(workdir / "UCF-101", originals, args.videos, args.frames)
    short = ClipTransform(**CLIP).prescaled_short_side
    extract_all(
        workdir / "UCF-101", workdir / "arrays", workers, short, progress=False, format="uint8"
    )
    arrays = [workdir / "arrays" / v.parent.name / f"{v.stem}.npy" for v in videos]
    return mirror, arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=175)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=None, help="prepared paper_fixture data")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="loader_rate_"))
    workers = max(1, args.workers)

    if args.data is not None:  # prepared paper-format data (benchmarks.paper_fixture)
        mirror, arrays = prepared_fixture(args.data)
    else:
        mirror, arrays = _make_prepared_data(workdir, args, workers)
    tasks = training_pretexts(mirror, arrays, device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"loaders: {workers} workers per task, batch {args.batch_size}, device stage on {name}")
    for task, (pretext, samples) in tasks.items():
        queued = workers * 4 + 2  # started and prefetched before the timing (see _rate)
        repeat = (args.batches + queued) * args.batch_size // len(samples) + 1  # no epoch end
        dataset = pretext.dataset(samples * repeat, train=True, seed=0)
        loader = DataLoader(
            dataset,
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=True,
            collate_fn=pretext.collate,
            prefetch_factor=4,
        )
        per_second, finish_ms = _rate(loader, pretext, args.batches, device)
        print(
            f"  {task:22s} {per_second:9.0f} samples/s ({per_second / workers:6.0f} per worker); "
            f"device stage {finish_ms:6.1f} ms per batch"
        )


if __name__ == "__main__":
    main()
