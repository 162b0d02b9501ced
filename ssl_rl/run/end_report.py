"""The few lines a run ends with, in the terminal and ``train.log``: results and where they are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def end_report(summary: Mapping[str, Any], summary_path: str) -> str:
    """Per task: pretext val accuracy vs chance, final train loss, NN top-1 (when the monitor
    ran); then status, steps, wall time, skipped files and the path of ``summary.json``."""
    metrics: Mapping[str, Mapping[str, Any]] = summary.get("metrics") or {}
    chance: Mapping[str, Any] = summary.get("chance") or {}
    nn = summary.get("nn_retrieval") or {}
    nn_cols = [p for p in nn if p != "step"]
    header = ["task", "val acc", "chance", "final loss", *(f"NN {p} top-1" for p in nn_cols)]
    rows = [header]
    for task in sorted(set(metrics) | set(chance)):
        values = metrics.get(task, {})
        rows.append(
            [
                task,
                _number(values.get("val_acc")),
                _number(chance.get(task)),
                _number(values.get("train_loss")),
                *(_number(nn[p].get("top1")) for p in nn_cols),
            ]
        )
    lines = []
    if len(rows) > 1:
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for n, row in enumerate(rows):
            cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
    status = str(summary.get("status", "?"))
    if summary.get("diverged_step") is not None:
        status += f" at step {summary['diverged_step']}"
    lines.append(
        f"status: {status}; steps: {summary.get('steps', '?')}; "
        f"wall time: {_duration(summary.get('wall_time_s'))}"
    )
    speed = summary.get("throughput")
    if speed:
        mfu = speed.get("mfu")
        lines.append(
            f"speed: {speed['steps_per_s']:.3g} steps/s; waiting for data "
            f"{100 * speed['data_wait_fraction']:.0f} % of training time (between steps "
            f"{100 * speed.get('between_steps_fraction', 0.0):.0f} %)"
            + (f"; MFU {100 * mfu:.1f} %" if mfu is not None else "")
            + f"; peak memory {speed['peak_memory_gb']:.2f} GB ({speed.get('device', '?')})"
        )
    syncs = summary.get("host_syncs")
    if syncs:
        places = ", ".join(f"{where} ({n})" for where, n in list(syncs["locations"].items())[:3])
        lines.append(
            f"host synchronisations: {syncs['per_step']:.2f} per training step"
            + (f"; most at {places}" if places else "")
        )
    for dataset, skipped in (summary.get("skipped") or {}).items():
        reasons = ", ".join(f"{k}: {v}" for k, v in (skipped.get("reasons") or {}).items())
        lines.append(
            f"skipped files: {dataset}: {skipped['count']}"
            + (f" ({reasons})" if reasons else "")
            + "; each is named in the log above"
        )
    if summary.get("checkpoint"):
        lines.append(f"checkpoint: {summary['checkpoint']}")
    lines.append(f"summary: {summary_path}")
    return "\n".join(lines)


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4g}"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(float(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{int(hours)}h{int(minutes):02d}m{secs:04.1f}s"
        if hours
        else f"{int(minutes)}m{secs:04.1f}s"
    )
