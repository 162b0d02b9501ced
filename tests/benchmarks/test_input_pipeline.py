"""The input-pipeline benchmarks run end to end at tiny sizes (numbers are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(module: str, *args: str, tmp_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, *args, "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_input_pipeline_prints_the_ratios(tmp_path: Path) -> None:
    out = _run(
        "benchmarks.input_pipeline",
        *("--rounds", "1", "--items", "4", "--photos", "4", "--videos", "2", "--frames", "30"),
        tmp_path=tmp_path,
    )
    last = out.strip().splitlines()[-1].split()
    assert [field.split("=")[0] for field in last] == [
        "spatial_x", "temporal_x", "vs_pil_x", "hours_16_cores"
    ]  # fmt: skip
    assert all(float(field.split("=")[1]) > 0 for field in last)
    assert "TFLOP forward + backward" in out


def test_loader_rate_runs_with_workers(tmp_path: Path) -> None:
    out = _run(
        "benchmarks.loader_rate",
        *("--workers", "1", "--batches", "2", "--batch-size", "8", "--photos", "4"),
        *("--videos", "2", "--frames", "30"),
        tmp_path=tmp_path,
    )
    assert "spatial" in out and "temporal" in out and "samples/s" in out
