"""Checkpoint writes are whole or absent; a checkpoint cut short is refused, by name."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from ssl_rl.checkpoints import atomic_io
from ssl_rl.checkpoints.atomic_io import AtomicCheckpointIO
from ssl_rl.run.errors import ConfigRefused
from ssl_rl.run.training import train

REPO = Path(__file__).resolve().parents[1]


def _state(step: int) -> dict[str, Any]:
    return {"global_step": step, "state_dict": {"w": torch.full((4096,), float(step))}}


def _step(path: Path) -> int:
    return int(torch.load(path, weights_only=False)["global_step"])


def test_a_write_killed_before_the_rename_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    last = tmp_path / "checkpoints" / "last.ckpt"
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from ssl_rl.checkpoints.atomic_io import AtomicCheckpointIO
        io = AtomicCheckpointIO()
        io.save_checkpoint({{"global_step": 1}}, {str(last)!r})
        # The process dies between the written temporary file and the rename.
        os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
        io.save_checkpoint({{"global_step": 2}}, {str(last)!r})
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert result.returncode == -9, result.stderr.decode()[-2000:]
    assert _step(last) == 1
    partial = last.with_name("last.ckpt.partial")
    assert partial.is_file()  # left behind, never in the checkpoint's place
    AtomicCheckpointIO().save_checkpoint(_state(3), last)
    assert _step(last) == 3 and not partial.exists()


def test_a_full_disk_while_writing_leaves_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(_state(1), last)

    def half_then_full(obj: Any, handle: Any) -> None:
        handle.write(b"PK\x03\x04" + b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_io.torch, "save", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint(_state(2), last)
    monkeypatch.undo()
    assert _step(last) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def _truncated_run(tmp_path: Path) -> Path:
    checkpoints = tmp_path / "run" / "checkpoints"
    io = AtomicCheckpointIO()
    io.save_checkpoint(_state(4), checkpoints / "step0000004.ckpt")
    io.save_checkpoint(_state(8), checkpoints / "last.ckpt")
    last = checkpoints / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # what a crash of a plain write leaves
    return tmp_path / "run"


def test_resume_refuses_a_truncated_checkpoint_by_name(tmp_path: Path) -> None:
    run_dir = _truncated_run(tmp_path)
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), f"resume={run_dir}"],
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"error: resume: {last} is not a complete checkpoint" in result.stderr
    assert str(run_dir / "checkpoints" / "step0000004.ckpt") in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints"]  # nothing written


def test_ckpt_path_refuses_a_truncated_checkpoint(compose_train, tmp_path: Path) -> None:
    last = _truncated_run(tmp_path) / "checkpoints" / "last.ckpt"
    cfg = compose_train(["experiment=s", f"ckpt_path={last}"])
    with pytest.raises(ConfigRefused, match=f"ckpt_path: {last} is not a complete checkpoint"):
        train(cfg)
