"""``summary.json``: what a run was and how it ended, in its run directory."""

from __future__ import annotations

import json
import logging
import math
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytorch_lightning.utilities import rank_zero_only

from ssl_rl.data.errors import DatasetError
from ssl_rl.run.errors import ConfigRefused, RunInterrupted, RunStopped

log = logging.getLogger(__name__)

# Errors whose message says what to fix: logged once, without a traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (DatasetError, ConfigRefused, RunStopped)


@contextmanager
def recorded_run(
    summary_path: Path,
    summary: dict[str, Any],
    reraise: bool = True,
    on_exit: Callable[[], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The one run wrapper of ``train.py`` and ``finetune.py``: ``summary`` starts as running,
    ends completed (the body sets it), diverged or interrupted (a :class:`RunStopped`; a stop
    signal is re-raised even in a sweep, which it stops too), interrupted by Ctrl-C or an exit, or
    failed with the error and traceback; its wall time is recorded and it is written to
    ``summary_path`` (rank 0 only) however the body ends; ``on_exit`` then runs (e.g. closing
    loggers, so a crashed job does not break the next job of a sweep). With ``reraise=False``
    (Hydra multiruns) a failure is recorded, not raised.
    """
    started = time.time()
    summary["status"] = "running"
    try:
        yield summary
    except RunStopped as stop:
        summary.update(status=stop.status, error=str(stop), **stop.fields)
        (log.warning if isinstance(stop, RunInterrupted) else log.error)("%s", stop)
        if reraise or isinstance(stop, RunInterrupted):
            raise
    except Exception as error:
        summary.update(status="failed", error=repr(error), traceback=traceback.format_exc())
        if isinstance(error, EXPECTED_ERRORS):
            log.error("run %s failed: %s", summary_path.parent, error)
        else:
            log.exception("run %s failed", summary_path.parent)
        if reraise:
            raise
    except (KeyboardInterrupt, SystemExit) as stop:
        summary.update(status="interrupted", error=repr(stop))
        raise
    finally:
        summary["wall_time_s"] = round(time.time() - started, 2)
        try:
            if on_exit is not None:
                on_exit()
        finally:
            # In DDP every rank runs this; one summary per run. (Lightning sets .rank at import.)
            if rank_zero_only.rank == 0:  # type: ignore[attr-defined]
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


def strict_json(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` (strict JSON has no such numbers)."""
    if isinstance(value, Mapping):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        return strict_json(value.item())
    return value


def write_summary(path: Path, summary: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    text = json.dumps(strict_json(summary), indent=2, allow_nan=False, default=str)
    tmp.write_text(text + "\n")
    tmp.replace(path)
    return path
