"""A real ``train.py`` in a subprocess, at the test suite's tiny sizes (preemption, failures)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import tiny_train_overrides

REPO = Path(__file__).resolve().parents[1]
MAX_STEPS = 16


def train_command(data_cache: Path, run_dir: Path, *extra: str) -> list[str]:
    """``python train.py`` of a 16-step ``s_policy`` run: checkpoints every 4 steps, validation
    every 8, one loader worker per task (in the process group, as in real runs)."""
    return [
        sys.executable,
        str(REPO / "train.py"),
        *tiny_train_overrides(["experiment=s_policy"]),
        f"trainer.max_steps={MAX_STEPS}",
        "trainer.val_check_interval=8",
        "callbacks.model_checkpoint.every_n_train_steps=4",
        "~callbacks.nn_retrieval",
        "data.num_workers=1",
        f"paths.data_cache={data_cache}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def process_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def run_ok(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end; its output in the failure message when it fails."""
    result = subprocess.run(command, cwd=cwd, env=process_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def run_expected_error(script: str, tmp_path: Path, *overrides: str, unset: str = "") -> str:
    """``python <script> overrides`` (data cache and run folder under ``tmp_path``), which must
    stop on an expected error: exit code 1 and no traceback. HYDRA_FULL_ERROR and ``unset``
    are removed from its environment; returns its output."""
    command = [
        sys.executable,
        str(REPO / script),
        *overrides,
        f"paths.data_cache={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    env = process_env()
    for name in ("HYDRA_FULL_ERROR", unset):
        env.pop(name, None)
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Traceback" not in output
    return output
