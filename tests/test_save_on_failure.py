"""A run ended by an exception saves ``last.ckpt`` of the failing step and says how to go on;
not when its state is not finite, and an error in that save does not replace the run's own."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from ssl_rl.checkpoints.atomic_io import AtomicCheckpointIO
from ssl_rl.run.training import train
from tests.conftest import tiny_train_overrides

REPO = Path(__file__).resolve().parents[1]
FAIL_AT = 3
BUG = "SSL_RL_TEST_CALLBACK_BUG"


class CallbackBug(Exception):
    """The error of a callback with a bug."""


class RaiseAtStep(pl.Callback):
    """Raises :class:`CallbackBug` as step ``step`` starts, while the environment has ``BUG``
    (a resume without it is the run after the fix); ``poison`` first makes a weight NaN."""

    def __init__(self, step: int, poison: bool = False) -> None:
        self.step = step
        self.poison = poison

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step != self.step or not os.environ.get(BUG):
            return
        if self.poison:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))
        raise CallbackBug(f"a bug at step {self.step}")


def _failing(*extra: str) -> list[str]:
    return [
        "experiment=s",
        "trainer.max_steps=6",
        "+callbacks.bug._target_=tests.test_save_on_failure.RaiseAtStep",
        f"+callbacks.bug.step={FAIL_AT}",
        *extra,
    ]


def test_callback_error_saves_the_failing_step_and_resume_continues(
    data_cache: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        *tiny_train_overrides([*_failing(), f"paths.data_cache={data_cache}"]),
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    failed = subprocess.run(command, env={**env, BUG: "1"}, capture_output=True, text=True)
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output[-3000:]
    assert "CallbackBug: a bug at step 3" in output  # the traceback of the run's own error
    resume_line = f"continue from {run_dir}/checkpoints/last.ckpt with `python train.py resume="
    assert f"{resume_line}{run_dir}`" in output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["failed_step"] == FAIL_AT
    assert summary["error_type"] == "CallbackBug"
    assert summary["error_message"] == "a bug at step 3"
    assert summary["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    checkpoint = torch.load(summary["checkpoint"], weights_only=False)
    assert checkpoint["global_step"] == FAIL_AT
    assert any("TrainMetricWindow" in k for k in checkpoint["callbacks"])  # the metric window
    assert checkpoint["optimizer_states"] and checkpoint["rng_state"]

    resumed = subprocess.run(
        [sys.executable, str(REPO / "train.py"), f"resume={run_dir}"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 6
    assert summary["resumed_from"]["step"] == FAIL_AT


def test_non_finite_state_keeps_the_last_good_checkpoint(
    compose_train, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUG, "1")
    cfg = compose_train(_failing("+callbacks.bug.poison=true"))
    with pytest.raises(CallbackBug):
        train(cfg)
    summary = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["failed_step"] == FAIL_AT
    assert "is not finite" in summary["checkpoint_error"]
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 2  # the periodic one


def test_a_failing_save_does_not_hide_the_runs_error(
    compose_train, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = AtomicCheckpointIO.save_checkpoint

    def disk_full_at_the_failure(
        self: AtomicCheckpointIO, checkpoint: dict, path: Any, **kwargs: Any
    ) -> None:
        if checkpoint["global_step"] == FAIL_AT:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, checkpoint, path, **kwargs)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", disk_full_at_the_failure)
    monkeypatch.setenv(BUG, "1")
    cfg = compose_train(_failing())
    with caplog.at_level(logging.ERROR), pytest.raises(CallbackBug):
        train(cfg)
    summary = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert summary["error_type"] == "CallbackBug"
    assert "No space left" in summary["checkpoint_error"] and "checkpoint" not in summary
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 2
    assert "saving the failed run's checkpoint failed as well" in caplog.text
    assert f"python train.py resume={cfg.paths.output_dir}`" in caplog.text  # from step 2
