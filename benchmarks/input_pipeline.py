"""Paper-scale input pipeline: what one CPU core feeds, and what one GPU eats.

    python -m benchmarks.input_pipeline [--rounds 5] [--items 64] [--workdir DIR]

In one process, one thread, CPU time per sample of every loader path, variants alternated
over ``--rounds`` rounds (median), on data it makes itself:

- ImageNet-sized photos: crops of scikit-learn's two sample photographs at 500 × 375 (the
  typical ImageNet size), JPEG quality 90, in the ImageFolder layout, and their prepared
  mirror (``prepare_images``, short side 256);
- UCF-101-like videos: 320 × 240, 25 fps, 7 s pans and zooms over the photos, MPEG-4 with
  B-frames at UCF-101's mean bitrate (6.5 GB / 13,320 videos / 7.2 s ≈ 540 kbit/s), and their
  prepared uint8 arrays (``prepare_frames --format uint8``, short side 73).

Paths (per sample, worker side, batching into 32s included):

- spatial ``current``: the single-stage loader before the worker / device split (PIL decode
  with draft scaling, the float jigsaw pipeline, float32 batches);
- spatial ``new``: the dataset a loader worker runs: the prepared mirror, torchvision's
  decoder, the uint8 worker stage;
- spatial ``pil_tiles``: a per-tile PIL loader in the style of the public JigsawPuzzlePytorch
  (PIL resize and crop, nine tile crops, per-tile ToTensor and Normalize);
- temporal ``current_avi``: 8 random frames decoded from the AVI, the float clip pipeline;
- temporal ``jpeg``: the dataset over JPEG frame folders (short side 128), uint8 worker stage;
- temporal ``new_uint8``: the dataset over the uint8 arrays: only the crop windows are read.

Then one paper-scale step's FLOPs (``FlopCounterMode``, forward + backward, counted at a small
batch and scaled), what one GPU consumes at an assumed utilisation of its dense bf16 peak, the
cores each path needs to keep up, and the data-bound hours of 350k steps on 16 cores. The last
line: ``spatial_x=… temporal_x=… vs_pil_x=… hours_16_cores=…``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_sample_image
from torch.utils.data import default_collate
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms as T

from benchmarks.config import compose_train
from ssl_rl.data.prepare_frames import extract_all
from ssl_rl.data.prepare_images import prepare_images
from ssl_rl.data.pretext.clip_dataset import ClipPretext, random_sorted_indices
from ssl_rl.data.pretext.clip_transform import ClipTransform
from ssl_rl.data.pretext.image_parts_dataset import ImagePartsDataset
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.readers.video_io import AviVideoSource, write_avi
from ssl_rl.run.training import build_data_and_model
from tests.data.pretext.cpu_reference import reference_clip, reference_jigsaw

BATCH = 32  # samples per collated batch in the measurements
PAPER_BATCH = 256  # per task and step [paper]
STEPS = 350_000  # [paper]
UCF_BITS_PER_PIXEL = 540e3 / (320 * 240 * 25)
CLIP = {"frame_size": 64, "resize_short": 128, "crop": 112, "jitter": 4}


# ------------------------------------------------------------------------------ test data
def make_photos(root: Path, count: int) -> list[Path]:
    """``count`` 500 × 375 (every fourth 375 × 500) JPEG crops of the two sample photos."""
    sources = [Image.fromarray(load_sample_image(name)) for name in ("china.jpg", "flower.jpg")]
    rng = np.random.default_rng(0)
    paths = []
    for k in range(count):
        photo = sources[k % 2]
        width, height = (375, 500) if k % 4 == 3 else (500, 375)
        scale = rng.uniform(max(width / photo.width, height / photo.height), 1.6)
        resized = photo.resize((round(photo.width * scale), round(photo.height * scale)))
        left = int(rng.integers(0, resized.width - width + 1))
        top = int(rng.integers(0, resized.height - height + 1))
        path = root / f"n{k % 4:08d}" / f"n{k % 4:08d}_{k}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        resized.crop((left, top, left + width, top + height)).save(path, quality=90)
        paths.append(path)
    return paths


def make_videos(root: Path, photos: list[Path], count: int, frames: int = 175) -> list[Path]:
    """UCF-101-like AVIs: a slow pan and zoom over a photo, 320 × 240, 25 fps, B-frames."""
    paths = []
    for k in range(count):
        photo = Image.open(photos[k % len(photos)]).convert("RGB")
        path = root / "Pan" / f"v_Pan_g{k + 1:02d}_c01.avi"
        path.parent.mkdir(parents=True, exist_ok=True)

        def pan(photo: Image.Image = photo, k: int = k):
            for t in range(frames):
                zoom = 1.0 + 0.25 * t / frames
                width = min(photo.width, photo.height * 4 / 3) * 0.8 / zoom
                height = width * 3 / 4
                left = (photo.width - width) * (0.5 + 0.4 * np.sin(0.02 * t + k))
                top = (photo.height - height) * (0.5 + 0.4 * np.cos(0.015 * t + k))
                box = (left, top, left + width, top + height)
                yield np.asarray(photo.resize((320, 240), Image.Resampling.BILINEAR, box=box))

        write_avi(path, pan(), gop_size=12, max_b_frames=2, bits_per_pixel=UCF_BITS_PER_PIXEL)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------ loaders
def _old_pil_decode(path: Path, min_size: int) -> torch.Tensor:
    """The loader's decode before torchvision's: PIL, with draft scaling for large JPEGs."""
    with Image.open(path) as image:
        image.draft("RGB", (min_size, min_size))
        array = np.asarray(image.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


class PerTilePilLoader:
    """A per-tile PIL jigsaw loader in the style of the public JigsawPuzzlePytorch: PIL
    resize / crop of the image, then per tile a PIL crop, a random 64 px crop, ToTensor and
    a Normalize by the tile's own mean and std."""

    def __init__(self) -> None:
        self.image_transform = T.Compose([T.Resize(256), T.CenterCrop(255)])
        self.tile_transform = T.Compose([T.RandomCrop(64), T.ToTensor()])

    def __call__(self, path: Path) -> torch.Tensor:
        image = Image.open(path).convert("RGB")
        if np.random.rand() < 0.3:
            image = image.convert("LA").convert("RGB")
        image = self.image_transform(image)
        side = image.size[0] / 3
        tiles = []
        for n in range(9):
            row, col = divmod(n, 3)
            box = (
                round(col * side),
                round(row * side),
                round((col + 1) * side),
                round((row + 1) * side),
            )
            tile = self.tile_transform(image.crop(box))
            mean, std = tile.view(3, -1).mean(dim=1), tile.view(3, -1).std(dim=1)
            std[std == 0] = 1
            tiles.append(T.functional.normalize(tile, mean.tolist(), std.tolist()))
        return torch.stack(tiles)


def _batched(make_sample: Callable[[int], object], items: int) -> Callable[[], None]:
    """Makes ``items`` samples and collates them in batches of 32 (as a loader worker does)."""

    def run() -> None:
        batch = []
        for i in range(items):
            batch.append(make_sample(i))
            if len(batch) == BATCH:
                default_collate(batch)
                batch = []
        if batch:
            default_collate(batch)

    return run


def spatial_paths(originals: list[Path], mirror: list[Path]) -> dict[str, Callable[[int], object]]:
    single_stage = JigsawTransform()
    new = ImagePartsDataset(mirror, JigsawTransform())  # what a loader worker runs
    pil_loader = PerTilePilLoader()
    generator = torch.Generator().manual_seed(0)
    count = len(originals)
    return {
        "current": lambda i: reference_jigsaw(
            single_stage, _old_pil_decode(originals[i % count], 256), generator
        ),
        "new": lambda i: new[i % count],
        "pil_tiles": lambda i: pil_loader(originals[i % count]),
    }


def temporal_paths(
    videos: list[Path], frame_folders: list[Path], arrays: list[Path]
) -> dict[str, Callable[[int], object]]:
    avi, single_stage = AviVideoSource(), ClipTransform(**CLIP)
    # What a loader worker runs: the uint8 arrays take the prescaled transform, a crop.
    jpeg = ClipPretext(partial(ClipTransform, **CLIP)).dataset(frame_folders, True, 0)
    uint8 = ClipPretext(partial(ClipTransform, **CLIP)).dataset(arrays, True, 0)
    generator = torch.Generator().manual_seed(0)
    for video in videos:
        avi.num_frames(video)
    count = len(videos)

    def avi_clip(path: Path) -> torch.Tensor:
        indices = random_sorted_indices(avi.num_frames(path), 8, generator)
        return avi.read_frames(path, indices)

    return {
        "current_avi": lambda i: reference_clip(
            single_stage, avi_clip(videos[i % count]), generator
        ),
        "jpeg": lambda i: jpeg[i % count],
        "new_uint8": lambda i: uint8[i % count],
    }


def cpu_ms_per_item(
    paths: dict[str, Callable[[int], object]], items: int, rounds: int
) -> dict[str, float]:
    """Median over rounds of the CPU milliseconds per sample, variants alternated."""
    runs = {name: _batched(sample, items) for name, sample in paths.items()}
    for run in runs.values():  # warm-up: caches, allocator, lazy imports
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.process_time()
            run()
            times[name].append(1000 * (time.process_time() - start) / items)
    return {name: statistics.median(values) for name, values in times.items()}


# ------------------------------------------------------------------------------ the GPU side
def step_tflop(batch: int = 4) -> float:
    """Forward + backward TFLOP of one paper-scale S+T step (256 puzzles + 256 clips)."""
    cfg = compose_train(["experiment=st", "scale=paper"], Path(tempfile.mkdtemp()))
    model = build_data_and_model(cfg)[1]
    parts = {
        name: torch.randn(batch, task.num_parts, 3, task.part_size, task.part_size)
        for name, task in model.tasks.items()
    }
    counter = FlopCounterMode(display=False)
    with counter:
        loss = sum(
            model._task_loss(name, p, model.samplers[name].draw(batch, "cpu"))[0]
            for name, p in parts.items()
        )
        loss.backward()
    return counter.get_total_flops() * PAPER_BATCH / batch / 1e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--items", type=int, default=64, help="samples per variant and round")
    parser.add_argument("--photos", type=int, default=32)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=175, help="frames per video (7 s)")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="the GPU's dense bf16 peak (H100 / H200 SXM: 989)")  # fmt: skip
    parser.add_argument("--utilisation", type=float, default=0.35,
                        help="assumed share of the peak a training step reaches")  # fmt: skip
    parser.add_argument("--cores", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="input_pipeline_"))

    print(f"making {args.photos} photos and {args.videos} videos in {workdir} ...", flush=True)
    originals = make_photos(workdir / "imagenet" / "train", args.photos)
    prepare_images(
        workdir / "imagenet" / "train", workdir / "mirror", 256, workers=1, progress=False
    )
    mirror = [workdir / "mirror" / p.parent.name / p.name for p in originals]
    videos = make_videos(workdir / "UCF-101", originals, args.videos, args.frames)
    short = ClipTransform(**CLIP).prescaled_short_side
    extract_all(workdir / "UCF-101", workdir / "arrays", 1, short, progress=False, format="uint8")
    extract_all(workdir / "UCF-101", workdir / "frames", 1, 128, progress=False)
    folders = [workdir / "frames" / v.parent.name / v.stem for v in videos]
    arrays = [workdir / "arrays" / v.parent.name / f"{v.stem}.npy" for v in videos]
    video_kb = sum(v.stat().st_size for v in videos) / len(videos) / 1024
    array_mb = sum(a.stat().st_size for a in arrays) / len(arrays) / 2**20
    print(f"video: {video_kb:.0f} KB per {args.frames / 25:.1f} s AVI, "
          f"{array_mb:.2f} MiB as uint8 arrays (short side {short})")  # fmt: skip

    ms = cpu_ms_per_item(spatial_paths(originals, mirror), args.items, args.rounds)
    ms |= cpu_ms_per_item(temporal_paths(videos, folders, arrays), args.items, args.rounds)
    print(f"\nper core (CPU time, median of {args.rounds} rounds, batching included):")
    for name, value in ms.items():
        print(f"  {name:12s} {value:7.3f} ms/sample  {1000 / value:8.0f} samples/s")

    tflop = step_tflop()
    steps_per_s = args.peak_tflops * args.utilisation / tflop
    print(f"\none paper-scale step (S+T, {PAPER_BATCH} puzzles + {PAPER_BATCH} clips): "
          f"{tflop:.2f} TFLOP forward + backward")  # fmt: skip
    print(f"one GPU at {args.utilisation:.0%} of {args.peak_tflops:.0f} TFLOP/s: "
          f"{steps_per_s:.1f} steps/s = {steps_per_s * PAPER_BATCH:.0f} puzzles/s and clips/s; "
          f"{STEPS / steps_per_s / 3600:.2f} h for {STEPS // 1000}k steps")  # fmt: skip
    combos = {
        "current (jigsaw + AVI)": ms["current"] + ms["current_avi"],
        "new (mirror + uint8 arrays)": ms["new"] + ms["new_uint8"],
        "PIL per-tile + AVI": ms["pil_tiles"] + ms["current_avi"],
    }
    hours = {}
    column = f"hours of {STEPS // 1000}k steps, {args.cores} cores"
    print(f"\n{'path':30s} {'cores per GPU':>14s} {column:>30s}")
    for name, per_pair in combos.items():
        cores = steps_per_s * PAPER_BATCH * per_pair / 1000
        hours[name] = STEPS * PAPER_BATCH * per_pair / 1000 / args.cores / 3600
        print(f"{name:30s} {cores:14.1f} {hours[name]:30.2f}")
    print(
        f"spatial_x={ms['current'] / ms['new']:.2f} "
        f"temporal_x={ms['current_avi'] / ms['new_uint8']:.1f} "
        f"vs_pil_x={ms['pil_tiles'] / ms['new']:.2f} "
        f"hours_16_cores={hours['new (mirror + uint8 arrays)'] * args.cores / 16:.2f}"
    )


if __name__ == "__main__":
    main()
