"""The paper-scale model step under each speed setting, side by side in one process.

    python -m benchmarks.step_levers [--repeat 20] [--compile default max-autotune-no-cudagraphs]

One S+T step (256 puzzles of 9 × 64 px tiles + 256 clips of 8 × 64 px frames, bf16 autocast on
CUDA, synthetic batches: no loaders) per setting, each setting adding one lever to the one
before: cuDNN autotuning (``trainer.benchmark``), channels_last (``model.channels_last``), a
fused optimiser step (``model.optimizer.fused``), ``torch.compile`` modes
(``model.compile_mode``), and, to show what a host synchronisation per step costs, a loss check
that reads the loss on the host every step. Prints ms per step, TFLOP/s and MFU (FLOPs counted
once with ``FlopCounterMode``, over the chip's peak dense bf16 rate as the run's report takes
it); compilation and autotuning time are printed apart (the first calls), not in the step time.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.paper_step import paper_model, random_parts, training_step
from ssl_rl.callbacks.throughput import peak_flops

EAGER = [
    "trainer.benchmark=false",
    "model.channels_last=false",
    "model.compile_mode=null",
    "model.optimizer.fused=null",
]


def settings(compile_modes: list[str]) -> dict[str, list[str]]:
    base = [*EAGER, "trainer.benchmark=true", "model.channels_last=true"]
    levers = {
        "eager, NCHW (as 16bfa22)": EAGER,
        "+ cuDNN autotune": [*EAGER, "trainer.benchmark=true"],
        "+ channels_last": base,
        "+ fused SGD": [*base, "model.optimizer.fused=true"],
    }
    for mode in compile_modes:
        levers[f"+ compile {mode}"] = [*base, "model.optimizer.fused=true",
                                       f"model.compile_mode={mode}"]  # fmt: skip
    return levers


SYNC_VARIANT = "+ fused SGD"  # measured again with a host read of the loss every step


def measure(overrides: list[str], batch: int, repeat: int, check_loss: bool) -> dict[str, float]:
    _, model, device = paper_model(overrides)
    parts = random_parts(model, batch, device)
    flops = model.count_step_flops(parts)
    step = training_step(model, parts, device, check_loss=check_loss)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    for _ in range(3):  # compilation, cuDNN autotuning, allocator warm-up
        step()
    synchronize()
    warm_up = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeat):
        step()
    synchronize()
    seconds = (time.perf_counter() - start) / repeat
    peak = peak_flops(device, torch.bfloat16)
    return {
        "step_ms": 1000 * seconds,
        "tflops": flops / seconds / 1e12,
        "mfu": flops / seconds / peak if peak else float("nan"),
        "warm_up_s": warm_up,
        "tflop_per_step": flops / 1e12,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="per task [paper: 256]")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--compile", nargs="*", default=["default"], help="compile modes")
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"paper-scale S+T step on {name}, batch {args.batch} per task, {args.repeat} steps")
    results = {}
    runs = []
    for label, overrides in settings(args.compile).items():
        runs.append((label, overrides, False))
        if label == SYNC_VARIANT:  # before compilation, whose time the limit may cut short
            runs.append((f"{label}, loss read on the host per step", overrides, True))
    for label, overrides, check_loss in runs:
        try:
            result = measure(overrides, args.batch, args.repeat, check_loss)
        except Exception as error:  # one failing lever must not hide the others
            print(f"  {label:48s} failed: {type(error).__name__}: {str(error)[:200]}")
            continue
        results[label] = result
        print(
            f"  {label:48s} {result['step_ms']:7.1f} ms  {result['tflops']:6.1f} TFLOP/s  "
            f"MFU {result['mfu']:.3f}  (warm-up {result['warm_up_s']:.1f} s)",
            flush=True,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
