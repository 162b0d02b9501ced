"""Per-step training losses of every experiment at test sizes: does a refactor change behaviour?

    python -m benchmarks.loss_fingerprint record before.json     # on the old commit
    python -m benchmarks.loss_fingerprint compare before.json    # on the new one

Each experiment runs 6 steps with the test suite's tiny sizes (tests/conftest.py), a policy
episode included, on one thread, and its logged losses and final metrics are kept. ``compare``
reruns them and lists every difference (exit status 1 if any).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.config import compose_train
from ssl_rl.run.training import train
from tests.conftest import EXPERIMENTS, tiny_train_overrides

STEPS = 6


def fingerprint(experiment: str, cache: Path) -> dict[str, object]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"fingerprint_{experiment}_"))
    overrides = [
        f"paths.data_cache={cache}",
        f"experiment={experiment}",
        f"trainer.max_steps={STEPS}",
    ]
    if experiment == "policy_analysis":
        return {}
    summary = train(compose_train(tiny_train_overrides(overrides), run_dir))
    losses: dict[str, list[float]] = {}
    with open(run_dir / "csv" / "metrics.csv") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if key.startswith("train/") and key.endswith("loss") and value:
                    losses.setdefault(key, []).append(float(value))
    return {"losses": losses, "metrics": summary["metrics"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["record", "compare"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fingerprint")
    args = parser.parse_args()
    torch.set_num_threads(1)
    experiments = [e for e in args.experiments.split(",") if e != "policy_analysis"]
    if args.action == "compare":
        reference = json.loads(args.file.read_text())
        experiments = [e for e in experiments if e in reference]
    result = {experiment: fingerprint(experiment, args.cache) for experiment in experiments}
    if args.action == "record":
        args.file.write_text(json.dumps(result, indent=1) + "\n")
        print(f"recorded {len(result)} experiments in {args.file}")
        return 0
    differences = [e for e in experiments if result[e] != reference[e]]
    for experiment in experiments:
        if experiment not in differences:
            print(f"{experiment:12s} identical")
            continue
        gap = _largest_loss_gap(result[experiment], reference[experiment])
        print(f"{experiment:12s} DIFFERS (largest |loss difference| {gap:.3g})")
    return 1 if differences else 0


def _largest_loss_gap(new: dict, old: dict) -> float:
    gaps = [float("inf")]
    if set(new["losses"]) == set(old["losses"]):
        gaps = [0.0] + [
            abs(a - b)
            for key in new["losses"]
            for a, b in zip(new["losses"][key], old["losses"][key], strict=False)
        ]
    return max(gaps)


if __name__ == "__main__":
    sys.exit(main())
