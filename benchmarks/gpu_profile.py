"""Where a paper-scale step's device time goes: the model step and each device stage, by kernel.

    python -m benchmarks.gpu_profile --data DIR [--repeat 10] [--rows 15] [--variant NAME=OVERRIDES]

``DIR`` is prepared paper-format data (``benchmarks.paper_fixture`` + the prepare commands, as
``make bench-gpu`` makes it). For the model step at paper shapes (``experiment=st_policy
scale=paper``, synthetic batches) and for each pretext's device stage (``finish``) on a real
batch already on the device (a CPU runs it too, without device times), prints the wall time
per call (host and device, synchronised), the device's busy time per call (the sum of its
kernels, from ``torch.profiler``) and the kernels that take the most of it. Wall time well
above busy time means the host, not the device, sets the pace. ``--variant`` adds model-step
settings side by side, e.g. ``--variant "fp32=trainer.precision=32-true"`` (comma-separated
overrides).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader

from benchmarks.loader_rate import moved, prepared_fixture, training_pretexts
from benchmarks.paper_step import paper_model, random_parts, training_step


def _device_ms(prof: profile, calls: int) -> float:
    """Busy device time per call: every kernel's and copy's own time, summed (the operators that
    launched them carry the same time again, so they are left out, as the table's total does)."""
    total_us = sum(
        event.self_device_time_total
        for event in prof.key_averages()
        if event.device_type != DeviceType.CPU
    )
    return total_us / 1000 / calls


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def report(label: str, call: Callable[[], object], repeat: int, rows: int) -> None:
    """Wall and device ms per call of ``call`` after three warm-up calls, and its top kernels."""
    for _ in range(3):
        call()
    _synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        call()
    _synchronize()
    wall_ms = 1000 * (time.perf_counter() - start) / repeat
    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(repeat):
            call()
        _synchronize()
    print(
        f"== {label}: {wall_ms:.2f} ms per call (wall), device busy "
        f"{_device_ms(prof, repeat):.2f} ms per call",
        flush=True,
    )
    sort = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=rows)
    print(table, flush=True)


def _first_batch(pretext, samples: list[Path], batch: int) -> dict[str, torch.Tensor]:
    dataset = pretext.dataset(samples * (batch // len(samples) + 1), train=True, seed=0)
    # Pinned as training's loaders pin it: the device stage's copies are then asynchronous.
    loader = DataLoader(
        dataset,
        batch_size=batch,
        num_workers=4,
        collate_fn=pretext.collate,
        pin_memory=torch.cuda.is_available(),
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return moved(next(iter(loader)), pretext, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=256, help="per task [paper: 256]")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=OVERRIDES")
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no device time)"
    print(f"device {name}, batch {args.batch} per task")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    stages = training_pretexts(*prepared_fixture(args.data), device)
    for label, (pretext, samples) in stages.items():
        batch = _first_batch(pretext, samples, args.batch)
        report(f"device stage: {label}", partial(pretext.finish, batch), args.repeat, args.rows)

    variants = {"model step (paper defaults)": []}
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        variants[f"model step, {name}"] = [o for o in overrides.split(",") if o]
    for label, overrides in variants.items():
        _, model, device = paper_model(overrides)
        parts = random_parts(model, args.batch, device)
        report(label, training_step(model, parts, device), args.repeat, args.rows)
        del model, parts
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
