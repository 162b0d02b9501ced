"""End-to-end training speed: ``train.py`` at paper scale on prepared paper-format data.

    python -m benchmarks.e2e_train --data DIR [--steps 300] [--name NAME] [overrides ...]

Runs ``python train.py experiment=st_policy scale=paper`` (the entry point users run, in a
subprocess) on ``DIR`` (``benchmarks.paper_fixture`` + the prepare commands) without the NN
retrieval monitor (it needs VOC07), and prints what the run's own throughput report measured
(``summary.json``'s ``throughput``: the windows after the first, so start-up and compilation
are not in it; the start-up is printed apart as the wall time until the first window), and
the lines that made the host wait for the device over 20 steps (``host_syncs``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def run(data: Path, steps: int, overrides: list[str], workdir: Path) -> dict[str, Any]:
    """The run's ``throughput`` block plus its status and wall time."""
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "experiment=st_policy",
        "scale=paper",
        f"paths.imagenet={data / 'imagenet'}",
        f"paths.ucf101={data / 'ucf101'}",
        f"paths.data_cache={workdir / 'cache'}",
        "~callbacks.nn_retrieval",
        "~callbacks.progress_bar",
        "trainer.enable_progress_bar=false",
        f"trainer.max_steps={steps}",
        "callbacks.throughput.every_n_steps=50",
        # Which lines make the host wait for the device, over 20 steps past the start-up.
        f"callbacks.host_syncs.start_step={min(150, steps // 2)}",
        "callbacks.host_syncs.steps=20",
        f"hydra.run.dir={workdir / 'run'}",
        *overrides,
    ]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=os.environ)
    wall = time.perf_counter() - started
    summary_path = workdir / "run" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if result.returncode != 0 or summary.get("status") != "completed":
        print(result.stdout[-3000:], result.stderr[-6000:], sep="\n")
    speed = summary.get("throughput") or {}
    windows = speed.get("measured_seconds")
    syncs = summary.get("host_syncs")
    return {
        "status": summary.get("status"),
        "wall_s": wall,
        "windows_s": windows,
        **speed,
        "host_syncs": syncs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--name", default="e2e")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides")
    args = parser.parse_args()
    result = run(args.data, args.steps, args.overrides, Path(tempfile.mkdtemp(prefix="e2e_")))
    mfu = result.get("mfu")
    print(
        f"{args.name}: {result['status']}; {result.get('steps_per_s', float('nan')):.2f} steps/s, "
        f"data wait {result.get('data_wait_fraction', float('nan')):.3f}, "
        f"between steps {result.get('between_steps_fraction', float('nan')):.3f}, "
        f"MFU {'-' if mfu is None else f'{mfu:.3f}'}, "
        f"peak memory {result.get('peak_memory_gb', float('nan')):.1f} GB, "
        f"run wall time {result['wall_s']:.0f} s ({' '.join(args.overrides) or 'defaults'})"
    )
    syncs = result.get("host_syncs")
    if syncs:
        print(f"host synchronisations per step: {syncs['per_step']:.2f} ({syncs['steps']} steps)")
        for where, count in syncs["locations"].items():
            print(f"  {count:5d}  {where}")
    print(json.dumps({"name": args.name, **result}))


if __name__ == "__main__":
    main()
