"""``summary.json``: what a run was and how it ended, in its run directory."""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytorch_lightning.utilities import rank_zero_only

log = logging.getLogger(__name__)


@contextmanager
def recorded_run(
    summary_path: Path,
    summary: dict[str, Any],
    reraise: bool = True,
    on_exit: Callable[[], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The one run wrapper of ``train.py`` and ``finetune.py``: ``summary`` starts as running,
    ends completed (the body sets it), or failed with the error and traceback; its wall time is
    recorded and it is written to ``summary_path`` (rank 0 only) however the body ends;
    ``on_exit`` then runs (e.g. closing loggers, so a crashed job does not break the next job
    of a sweep). With ``reraise=False`` (Hydra multiruns) a failure is recorded, not raised.
    """
    started = time.time()
    summary["status"] = "running"
    try:
        yield summary
    except Exception as error:
        summary.update(status="failed", error=repr(error), traceback=traceback.format_exc())
        log.exception("run %s failed", summary_path.parent)
        if reraise:
            raise
    finally:
        summary["wall_time_s"] = round(time.time() - started, 2)
        try:
            if on_exit is not None:
                on_exit()
        finally:
            if rank_zero_only.rank == 0:  # in DDP every rank runs this; one summary per run
                write_summary(summary_path, summary)


def task_metrics(metrics: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """``{"train/spatial/acc": x, ...}`` -> ``{"spatial": {"train_acc": x, ...}}``."""
    grouped: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] in ("train", "val"):
            stage, task, name = parts
            grouped.setdefault(task, {})[f"{stage}_{name}"] = round(float(value), 6)
    return grouped


def write_summary(path: Path, summary: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path
