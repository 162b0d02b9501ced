"""The demo-discrimination benchmark's table and target checks, on hand-made run directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.demo_discrimination import gains, report
from ssl_rl.report.runs import load_runs


def _run(root: Path, experiment: str, seed: int, start: dict, end: dict) -> None:
    run = root / f"{experiment}_seed{seed}"
    run.mkdir(parents=True)
    summary = {"experiment": experiment, "seed": seed, "status": "completed"}
    (run / "summary.json").write_text(json.dumps(summary))
    history = [
        {"step": 0, **{p: {"top1": v} for p, v in start.items()}},
        {"step": 900, **{p: {"top1": v} for p, v in end.items()}},
    ]
    (run / "nn_retrieval.json").write_text(json.dumps(history))


def test_gains_are_paired_per_seed_and_targets_need_ten_points_beyond_the_spread(
    tmp_path: Path,
) -> None:
    starts = {1: 0.30, 2: 0.34, 3: 0.32}
    for seed, start in starts.items():
        # S: +12 points on VOC07 with a small spread; T: +4 on UCF-101, not enough.
        _run(
            tmp_path,
            "s",
            seed,
            {"voc07": 0.40, "ucf101": start},
            {"voc07": 0.52 + seed / 100, "ucf101": start + 0.02},
        )
        _run(
            tmp_path,
            "t",
            seed,
            {"voc07": 0.40, "ucf101": start},
            {"voc07": 0.38, "ucf101": start + 0.04},
        )
    runs = load_runs([tmp_path], with_checkpoints=False)
    found = {(g.experiment, g.protocol): g for g in gains(runs)}
    assert found["s", "voc07"].gain.mean == pytest.approx(0.14)
    assert found["s", "voc07"].met
    assert found["t", "ucf101"].gain.per_seed == pytest.approx({1: 0.04, 2: 0.04, 3: 0.04})
    assert not found["t", "ucf101"].met
    text, data = report(runs)
    assert data["targets"] == {
        "random_init_ucf101_at_most_40": True,
        "a_task_10_points_above_random_on_voc07": True,
        "a_task_10_points_above_random_on_ucf101": False,
    }
    assert "| random init | – | 40.0 ± 0.0 | 32.0 ± 2.0 | 3 |" in text
