"""Which lines make the host wait for the GPU during training steps, and how often.

On a GPU the host queues a step's kernels and runs ahead to prepare the next batch while the
device computes. An operation that needs a value or an ordering from the device (``.item()``,
``float(tensor)``, ``torch.tensor(..., device="cuda")``, a copy from ordinary host memory
without ``non_blocking``) makes the host wait for everything queued: the device then idles
while the host prepares the next step, and the run goes at the speed of host and device added
together instead of the slower of the two. Such a line is easy to add and invisible in the
code, so this callback finds them: for ``steps`` training steps from ``start_step`` it sets
CUDA's sync debug mode to warn, attributes every warning to the innermost line outside torch
and Lightning, and reports the count per step and the lines (log, and ``summary.json``'s
``host_syncs``). In-loop evaluations (the policy's measurements, the NN monitor) are left
out: they synchronise on purpose. Off with ``steps: 0``; on a CPU there is nothing to count.
"""

from __future__ import annotations

import logging
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)

SYNC_MESSAGE = "called a synchronizing CUDA operation"
# Frames inside these packages are not where a project's synchronisation is written.
_LIBRARY_PARTS = ("/torch/", "/pytorch_lightning/", "/lightning_fabric/", "/lightning/")


def _set_sync_debug_mode(mode: str) -> None:
    torch.cuda.set_sync_debug_mode(mode)


class HostSyncReport(pl.Callback):
    """Counts and locates the host synchronisations of ``steps`` training steps from
    ``start_step`` on devices of ``device_types`` (see the module docstring)."""

    def __init__(
        self,
        start_step: int = 100,
        steps: int = 0,
        top: int = 10,
        device_types: tuple[str, ...] = ("cuda",),
    ) -> None:
        if start_step < 0 or steps < 0 or top < 1:
            raise ValueError(
                f"HostSyncReport: start_step and steps must be >= 0 and top >= 1, got "
                f"{start_step}, {steps}, {top}"
            )
        self.start_step = start_step
        self.steps = steps
        self.top = top
        self.device_types = tuple(device_types)
        self.counted_steps = 0
        self.locations: Counter[str] = Counter()
        self._catcher: warnings.catch_warnings[None] | None = None
        self._paused = False
        self._done = False
        self._show_other: Any = None

    # ----------------------------------------------------------------- hooks
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._done or self.steps == 0 or trainer.global_step < self.start_step:
            return
        device = trainer.strategy.root_device
        if device.type not in self.device_types:
            log.info("host synchronisations: training runs on %s; nothing to count", device)
            self._done = True
            return
        if self._catcher is None:
            self._start()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        if self._catcher is None:
            return
        self.counted_steps += 1
        if self.counted_steps >= self.steps:
            self._finish()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finish()  # a run shorter than the window reports what it counted

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if self._catcher is not None:
            self._stop()

    def on_evaluation_start(self, trainer: pl.Trainer) -> None:
        """An evaluation inside the training loop: its synchronisations are not the step's."""
        if self._catcher is not None and not self._paused:
            self._paused = True
            self._debug_mode("default")

    def on_evaluation_end(self, trainer: pl.Trainer) -> None:
        if self._catcher is not None and self._paused:
            self._paused = False
            self._debug_mode("warn")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.on_evaluation_start(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.on_evaluation_end(trainer)

    # ----------------------------------------------------------------- report
    def summary(self) -> dict[str, Any] | None:
        """``summary.json``'s ``host_syncs`` block, or None when nothing was counted."""
        if not self.counted_steps:
            return None
        total = sum(self.locations.values())
        return {
            "steps": self.counted_steps,
            "per_step": total / self.counted_steps,
            "locations": dict(self.locations.most_common(self.top)),
        }

    def describe(self) -> str:
        summary = self.summary()
        if summary is None:
            return "host synchronisations: no step counted"
        head = (
            f"host synchronisations: {summary['per_step']:.2f} per training step over "
            f"{summary['steps']} steps"
        )
        if not summary["locations"]:
            return head + " (none: the host runs ahead of the device)"
        lines = [f"  {count:6d}  {where}" for where, count in summary["locations"].items()]
        return "\n".join([head + "; where (count):", *lines])

    # ----------------------------------------------------------------- internals
    def _start(self) -> None:
        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.simplefilter("always")
        self._show_other = warnings.showwarning
        warnings.showwarning = self._record
        self._debug_mode("warn")

    def _finish(self) -> None:
        if self._catcher is not None:
            self._stop()
            log.info("%s", self.describe())

    def _stop(self) -> None:
        self._debug_mode("default")
        catcher, self._catcher = self._catcher, None
        if catcher is not None:
            catcher.__exit__(None, None, None)
        self._done = True

    def _debug_mode(self, mode: str) -> None:
        if "cuda" in self.device_types and torch.cuda.is_available():
            _set_sync_debug_mode(mode)

    def _record(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if SYNC_MESSAGE not in str(message) or self._paused:
            self._show_other(message, category, filename, lineno, file, line)
            return
        self.locations[_project_line(traceback.extract_stack()[:-1], filename, lineno)] += 1


def _project_line(stack: list[traceback.FrameSummary], filename: str, lineno: int) -> str:
    """The innermost frame outside torch, Lightning and the warnings machinery."""
    for frame in reversed(stack):
        path = frame.filename.replace("\\", "/")
        if any(part in path for part in _LIBRARY_PARTS) or path.endswith("warnings.py"):
            continue
        return f"{_short(path)}:{frame.lineno} ({frame.name})"
    return f"{_short(filename)}:{lineno}"


def _short(path: str) -> str:
    parts = Path(path).parts
    for anchor in ("ssl_rl", "benchmarks", "tests"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) :])
    return path
