"""Every ``experiment=`` config composes and trains a few steps; resume continues the count."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ssl_rl.run.training import train
from tests.conftest import EXPERIMENTS


def cfg_classes(cfg, task: str) -> int:
    """The number of classes a composed task has (n_perms for orderings, else num_classes)."""
    classes = cfg.tasks[task].classes
    return int(classes.n_perms if "n_perms" in classes else classes.num_classes)


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_a_few_steps(experiment: str, compose_train, tmp_path: Path) -> None:
    overrides = [f"experiment={experiment}"]
    if experiment == "policy_analysis":  # starts from another run's weights
        source = compose_train(["experiment=s", "trainer.max_steps=1"], tmp_path / "source")
        train(source)
        overrides.append(f"init_from={tmp_path / 'source'}")
    cfg = compose_train(overrides)
    summary = train(cfg)

    written = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert written["status"] == "completed", written.get("traceback")
    assert written["experiment"] == experiment
    assert written["seed"] == cfg.seed
    assert written["steps"] == 3
    assert Path(written["checkpoint"]).is_file()
    assert written["wall_time_s"] > 0
    for task in cfg.schedule.tasks:
        assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(written["metrics"][task])
        assert written["chance"][task] == pytest.approx(1 / cfg_classes(cfg, task))
    assert summary["metrics"] == written["metrics"]
    # NN retrieval (Fig. 5) at the start, every val_check_interval steps and at the end.
    history = json.loads((Path(cfg.paths.output_dir) / "nn_retrieval.json").read_text())
    assert [h["step"] for h in history] == [0, 2, 3]
    for protocol in cfg.callbacks.nn_retrieval.protocols:
        assert all(0 <= h[protocol]["top1"] <= h[protocol]["top5"] <= 1 for h in history)


def test_sequential_schedule_trains_spatial_then_temporal(compose_train) -> None:
    cfg = compose_train(["experiment=s_then_t", "trainer.max_steps=4"])
    train(cfg)
    rows = read_metrics(Path(cfg.paths.output_dir))
    spatial_steps = {int(r["step"]) for r in rows if r.get("train/spatial/loss")}
    temporal_steps = {int(r["step"]) for r in rows if r.get("train/temporal/loss")}
    assert spatial_steps == {0, 1}
    assert temporal_steps == {2, 3}


def test_resume_from_last_checkpoint_continues_step_count(compose_train, tmp_path: Path) -> None:
    first = compose_train(["experiment=st", "trainer.max_steps=2"], output_dir=tmp_path / "a")
    train(first)
    resumed = compose_train(
        ["experiment=st", "trainer.max_steps=4", f"ckpt_path={tmp_path / 'a'}"],
        output_dir=tmp_path / "b",
    )
    summary = train(resumed)
    assert summary["steps"] == 4
    rows = read_metrics(tmp_path / "b")
    trained_steps = {int(r["step"]) for r in rows if r.get("train/spatial/loss")}
    assert trained_steps == {2, 3}


def test_missing_checkpoint_is_a_clear_error(compose_train, tmp_path: Path) -> None:
    cfg = compose_train([f"ckpt_path={tmp_path / 'nowhere'}"])
    with pytest.raises(FileNotFoundError, match="ckpt_path"):
        train(cfg)


def test_failure_in_a_multirun_job_is_recorded_not_raised(compose_train) -> None:
    cfg = compose_train(["experiment=s", "data.batch_size=0"])
    summary = train(cfg, reraise=False)
    assert summary["status"] == "failed"
    written = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert written["status"] == "failed" and "batch_size" in written["traceback"]
