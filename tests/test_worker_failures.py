"""A real ``train.py`` whose loader worker is SIGKILLed: with no restarts left it fails with a
checkpoint of the failing step, which resumes to the weights of an uninterrupted run; with
``data.worker_restarts`` it goes on with new workers and ends as the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ssl_rl.data.worker_deaths import is_worker_death
from tests.train_process import MAX_STEPS, REPO, process_env, run_ok, train_command


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


def _kill_a_worker_once_a_step_is_saved(
    command: list[str], run_dir: Path, cwd: Path
) -> tuple[int, str]:
    """Start ``command``, SIGKILL its training loader's worker after the step-4 checkpoint,
    as the out-of-memory killer would; the return code and the output."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while not (run_dir / "checkpoints" / "step0000004.ckpt").exists():
        assert process.poll() is None, process.communicate()[0][-3000:]
        time.sleep(0.05)
    # Before the first validation (step 8) the only child is the one training-loader worker.
    workers = _children(process.pid)
    assert len(workers) == 1, workers
    os.kill(workers[0], signal.SIGKILL)
    output = process.communicate(timeout=180)[0]
    return process.returncode, output


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]


def _assert_same_weights(a: Path, b: Path) -> None:
    weights_a, weights_b = _weights(a), _weights(b)
    for name, tensor in weights_a.items():
        torch.testing.assert_close(weights_b[name], tensor, rtol=0, atol=0, msg=name)


@pytest.fixture(scope="module")
def straight_run(data_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    run_ok(train_command(data_cache, run_dir), run_dir.parent)
    return run_dir


def test_killed_worker_fails_with_a_checkpoint_that_resumes_like_an_uninterrupted_run(
    data_cache: Path, tmp_path: Path, straight_run: Path
) -> None:
    failed = tmp_path / "failed"
    code, output = _kill_a_worker_once_a_step_is_saved(
        train_command(data_cache, failed), failed, tmp_path
    )
    assert code == 1, output[-3000:]
    summary = json.loads((failed / "summary.json").read_text())
    assert summary["status"] == "failed", summary
    assert summary["error_type"] == "RuntimeError"
    assert "DataLoader worker" in summary["error_message"]
    step = summary["failed_step"]
    assert 4 <= step < MAX_STEPS and summary["steps"] == step
    assert summary["checkpoint"] == str(failed / "checkpoints" / "last.ckpt")
    saved = torch.load(summary["checkpoint"], weights_only=False)
    assert saved["global_step"] == step
    assert f"python train.py resume={failed}`" in output

    run_ok([sys.executable, str(REPO / "train.py"), f"resume={failed}"], tmp_path)

    resumed = json.loads((failed / "summary.json").read_text())
    reference = json.loads((straight_run / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["resumed_from"]["step"] == step
    for key in ("steps", "metrics", "policy"):
        assert resumed[key] == reference[key], key
    _assert_same_weights(straight_run, failed)


def test_worker_restart_goes_on_to_the_uninterrupted_result(
    data_cache: Path, tmp_path: Path, straight_run: Path
) -> None:
    restarted = tmp_path / "restarted"
    command = train_command(data_cache, restarted, "data.worker_restarts=1")
    code, output = _kill_a_worker_once_a_step_is_saved(command, restarted, tmp_path)
    assert code == 0, output[-3000:]
    assert "new loader workers, same data from there on (restart 1 of" in output
    summary = json.loads((restarted / "summary.json").read_text())
    reference = json.loads((straight_run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["worker_restarts"] == 1
    for key in ("steps", "metrics", "policy"):
        assert summary[key] == reference[key], key
    _assert_same_weights(straight_run, restarted)


def test_only_a_worker_gone_counts_as_a_death() -> None:
    assert is_worker_death(RuntimeError("DataLoader worker (pid(s) 12) exited unexpectedly"))
    assert is_worker_death(RuntimeError("DataLoader worker (pid 12) is killed by signal: Killed."))
    assert is_worker_death(ConnectionResetError(104, "Connection reset by peer"))
    # A file that raises in a worker is handed over as its own error: not a death to retry.
    assert not is_worker_death(EOFError("Caught EOFError in DataLoader worker process 0."))
    assert not is_worker_death(RuntimeError("CUDA out of memory"))
