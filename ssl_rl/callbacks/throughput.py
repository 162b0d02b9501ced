"""How fast a run trains and why: steps/s, samples/s, data wait, MFU and memory, every N steps.

Lightning's ``ThroughputMonitor`` synchronises the device after every batch, which would stall
the host's run-ahead that this project's GPU step relies on, and it knows nothing of the time
the loop waits for data; so the numbers here are taken with one device synchronisation per
window of ``every_n_steps`` steps. Lightning's pieces are used where they fit: its table of
peak FLOP/s per chip (``get_available_flops``; dense Hopper figures added) and torch's
``FlopCounterMode``.

What counts as training time: the wall time of the training loop, minus validation, minus the
policy's measurements (its all-ψ validations, k-means and update) and the nearest-neighbour
monitor (both announced by ``ssl_rl.callbacks.in_loop_evaluation``). Each excluded span starts
and ends with a device synchronisation, so queued training work is not counted as excluded.
Data wait: time the training loop waits for the loaders' next batch (the training loader
times it). Between steps: host time from the end of one step to the start of the next, which
holds that wait, the host-to-device copy and the launch of the device stage, and, when the
device is behind, waiting for it to take more work: a large share of it with little data wait
means the device (or the host's own work) sets the pace, not the loaders.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.throughput import get_available_flops
from pytorch_lightning.utilities import rank_zero_only

log = logging.getLogger(__name__)


@dataclass
class _Window:
    """Totals since a window started (times in seconds)."""

    started: float
    steps: int = 0
    samples: dict[str, int] = field(default_factory=dict)
    data_wait: float = 0.0
    between_steps: float = 0.0
    excluded: float = 0.0

    def add(self, other: _Window) -> None:
        self.steps += other.steps
        self.data_wait += other.data_wait
        self.between_steps += other.between_steps
        self.excluded += other.excluded
        for task, count in other.samples.items():
            self.samples[task] = self.samples.get(task, 0) + count


class ThroughputMonitor(pl.Callback):
    """Logs ``throughput/*`` every ``every_n_steps`` training steps and keeps a run summary.

    ``peak_tflops``: the device's peak dense rate for MFU; ``null`` takes Lightning's table
    for the chip and the trainer's precision (unknown chips and CPUs: MFU is null).
    The summary (:meth:`summary`, ``summary.json``'s ``throughput``) covers every window after
    the first (which holds start-up: compilation, cuDNN autotuning, workers starting), or the
    first when it is the only one.
    """

    def __init__(self, every_n_steps: int = 50, peak_tflops: float | None = None) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.peak_tflops = peak_tflops
        self.flops_per_step: int | None = None
        self.peak_flops: float | None = None
        self.device = torch.device("cpu")
        self.windows: list[dict[str, Any]] = []
        self._window: _Window | None = None
        self._closed: list[tuple[_Window, float]] = []
        self._last_end: float | None = None
        self._loader_wait: float | None = None
        self._paused_at: float | None = None

    # ----------------------------------------------------------------- hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.device = trainer.strategy.root_device
        if self.peak_tflops is not None:
            self.peak_flops = self.peak_tflops * 1e12
        else:
            dtype = _compute_dtype(str(trainer.precision))
            self.peak_flops = peak_flops(self.device, dtype)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._window = _Window(started=time.perf_counter())
        self._last_end = None
        self._loader_wait = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if self._window is None:
            return
        if self._last_end is not None:
            self._window.between_steps += now - self._last_end
        waited = getattr(getattr(trainer, "train_dataloader", None), "wait_seconds", None)
        if isinstance(waited, float):
            if self._loader_wait is not None:
                self._window.data_wait += waited - self._loader_wait
            self._loader_wait = waited
        if self.flops_per_step is None:
            count = getattr(pl_module, "count_step_flops", None)
            if callable(count) and isinstance(batch, Mapping):
                self.flops_per_step = int(count(batch))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        window = self._window
        if window is None:
            return
        window.steps += 1
        if isinstance(batch, Mapping):
            for task, parts in batch.items():
                window.samples[task] = window.samples.get(task, 0) + len(parts)
        if window.steps >= self.every_n_steps:
            self._close_window(trainer, trainer.global_step)
        self._last_end = time.perf_counter()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.training and not trainer.sanity_checking:
            self._pause()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.training and not trainer.sanity_checking:
            self._resume()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._window is not None and self._window.steps:
            self._close_window(trainer, trainer.global_step)
        self._window = None

    # ----------------------------------------------------------------- exclusions
    def on_evaluation_start(self, trainer: pl.Trainer) -> None:
        """An evaluation inside the training loop (:mod:`in_loop_evaluation`) starts."""
        self._pause()

    def on_evaluation_end(self, trainer: pl.Trainer) -> None:
        self._resume()

    def _pause(self) -> None:
        if self._window is None or self._paused_at is not None:
            return
        self._synchronize()
        self._paused_at = time.perf_counter()

    def _resume(self) -> None:
        if self._window is None or self._paused_at is None:
            return
        self._synchronize()
        paused = time.perf_counter() - self._paused_at
        self._window.excluded += paused
        if self._last_end is not None and self._paused_at >= self._last_end:
            self._last_end += paused  # between two steps (validation, NN monitor): not a gap
        self._paused_at = None

    # ----------------------------------------------------------------- windows
    def _close_window(self, trainer: pl.Trainer, step: int) -> None:
        window = self._window
        assert window is not None
        self._synchronize()
        now = time.perf_counter()
        elapsed = now - window.started - window.excluded
        metrics = self._rates(window, elapsed)
        metrics["peak_memory_gb"] = self.peak_memory_gb()
        self.windows.append({"step": step, "steps": window.steps, "seconds": elapsed, **metrics})
        self._closed.append((window, elapsed))
        self._log(trainer, metrics, step)
        self._window = _Window(started=now)

    def _rates(self, window: _Window, seconds: float) -> dict[str, Any]:
        seconds = max(seconds, 1e-9)
        steps_per_s = window.steps / seconds
        mfu = None
        if self.flops_per_step is not None and self.peak_flops:
            mfu = self.flops_per_step * steps_per_s / self.peak_flops
        return {
            "steps_per_s": steps_per_s,
            "samples_per_s": {task: n / seconds for task, n in window.samples.items()},
            "data_wait_fraction": min(1.0, window.data_wait / seconds),
            "between_steps_fraction": min(1.0, window.between_steps / seconds),
            "mfu": mfu,
        }

    def summary(self) -> dict[str, Any] | None:
        """``summary.json``'s ``throughput`` block, or None before any window closed."""
        if not self._closed:
            return None
        # The first window holds start-up; the run's figures start after it when there are more.
        measured = self._closed[1:] or self._closed
        totals, seconds = _Window(started=0.0), sum(elapsed for _, elapsed in measured)
        for window, _ in measured:
            totals.add(window)
        return {
            **self._rates(totals, seconds),
            "peak_memory_gb": self.peak_memory_gb(),
            "flops_per_step": self.flops_per_step,
            "peak_tflops": None if self.peak_flops is None else self.peak_flops / 1e12,
            "measured_steps": totals.steps,
            "measured_seconds": round(seconds, 3),
            "device": _device_name(self.device),
            "excludes": "validation, the policy's measurements, the NN retrieval monitor",
        }

    def peak_memory_gb(self) -> float:
        """Peak device memory allocated (CUDA), or the process's peak resident memory (CPU)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 1e9
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1e9 if sys.platform == "darwin" else peak / 1e6  # bytes vs KiB

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @rank_zero_only
    def _log(self, trainer: pl.Trainer, metrics: dict[str, Any], step: int) -> None:
        flat = {
            "throughput/steps_per_s": metrics["steps_per_s"],
            "throughput/data_wait_fraction": metrics["data_wait_fraction"],
            "throughput/between_steps_fraction": metrics["between_steps_fraction"],
            "throughput/peak_memory_gb": metrics["peak_memory_gb"],
        }
        for task, rate in metrics["samples_per_s"].items():
            flat[f"throughput/{task}/samples_per_s"] = rate
        if metrics["mfu"] is not None:
            flat["throughput/mfu"] = metrics["mfu"]
        for logger in trainer.loggers:
            logger.log_metrics(flat, step=step)


# Dense peak FLOP/s where Lightning's table does not give it: an H200 SXM reports itself as
# "NVIDIA H200" (Lightning's H200 entries need "sxm1" / "nvl1" in the name), and Lightning lists
# Hopper's bf16 with sparsity (1,979 TFLOP/s). NVIDIA's datasheets: H100 / H200 SXM 989 TFLOP/s
# dense bf16 and fp16.
_DENSE_PEAK_TFLOPS = {
    ("nvidia h200", torch.bfloat16): 989.4,
    ("nvidia h200", torch.float16): 989.4,
    ("nvidia h100 80gb hbm3", torch.bfloat16): 989.4,
    ("nvidia h100 80gb hbm3", torch.float16): 989.4,
}


def peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """The device's peak dense FLOP/s at ``dtype``: this table first, then Lightning's; None for
    CPUs and chips neither knows."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).lower()
    if (name, dtype) in _DENSE_PEAK_TFLOPS:
        return _DENSE_PEAK_TFLOPS[name, dtype] * 1e12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "FLOPs not found": the None says it
        available = get_available_flops(device, dtype)
    return float(available) if available else None


def _compute_dtype(precision: str) -> torch.dtype:
    if "bf16" in precision:
        return torch.bfloat16
    if "16" in precision:
        return torch.float16
    if "64" in precision:
        return torch.float64
    return torch.float32


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type
