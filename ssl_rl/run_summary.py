"""``summary.json``: what a run was and how it ended, in its run directory."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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
