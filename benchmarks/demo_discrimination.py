"""Can the demo data tell learned features from random ones? NN top-1, random init vs S, T, R.

    python -m benchmarks.demo_discrimination [--sweep DIR] [--seeds 1 2 3] [overrides ...]

Trains ``experiment=s`` and ``experiment=t`` (900 demo steps each, ``python train.py``) and
``experiment=r`` (rotation, 1800 steps: it passes the UCF-101 target only with twice the demo
budget; docs/results.md) for
every seed that ``--sweep`` does not already hold a completed run of, then reads the runs'
``nn_retrieval.json`` (the ``nn_retrieval`` callback: pool5, cosine, on the demo's VOC07-format
crops and UCF-101-format frames): step 0 is the random initialisation, the last entry the
trained trunk. Prints the table (mean ± sample std over seeds) and the paired gain of each
pretext task over its own random init, and checks the targets: random init at most 40 % on
the UCF-101-format frames, and on each set at least one task 10 points above random init,
beyond the seed spread (its mean - std above random init's mean + std). About 5 min per run
on a 2-core CPU; rerunning with the same ``--sweep`` only reads.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ssl_rl.report.runs import RunSet, load_runs
from ssl_rl.report.table import (
    RANDOM_INIT,
    Stat,
    aggregate,
    build_table,
    default_columns,
    format_stat,
    table_markdown,
)

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("s", "t", "r")
# Per experiment, on top of the demo defaults (the lr step kept at 2/3 of the run).
STEPS = {"r": ["trainer.max_steps=1800", "trainer.val_check_interval=600",
               "model.scheduler.step_size=1200"]}  # fmt: skip
PROTOCOLS = {"voc07": "VOC07-format crops", "ucf101": "UCF-101-format frames"}
MAX_RANDOM_INIT_UCF101 = 0.40
MIN_GAIN = 0.10


@dataclass(frozen=True)
class Gain:
    """A task's NN top-1 on one set: trained, its step-0 random init, and the paired gain."""

    experiment: str
    protocol: str
    trained: Stat
    initial: Stat
    gain: Stat

    @property
    def beyond_spread(self) -> bool:
        trained, initial = self.trained, self.initial
        if trained.mean is None or initial.mean is None:
            return False
        return trained.mean - (trained.std or 0.0) > initial.mean + (initial.std or 0.0)

    @property
    def met(self) -> bool:
        return self.gain.mean is not None and self.gain.mean >= MIN_GAIN and self.beyond_spread


def train_missing(sweep: Path, seeds: list[int], overrides: list[str]) -> None:
    """One ``train.py`` run per experiment and seed not yet completed under ``sweep``."""
    done = _completed(load_runs([sweep], with_checkpoints=False)) if sweep.exists() else set()
    for seed in seeds:
        for experiment in EXPERIMENTS:
            if (experiment, seed) in done:
                continue
            run_dir = sweep / f"{experiment}_seed{seed}"
            command = [
                sys.executable,
                "train.py",
                f"experiment={experiment}",
                f"seed={seed}",
                f"hydra.run.dir={run_dir}",
                "~callbacks.progress_bar",
                "trainer.enable_progress_bar=false",
                *STEPS.get(experiment, []),
                *overrides,
            ]
            print("running:", " ".join(command[1:]), flush=True)
            subprocess.run(command, cwd=REPO, check=True)


def gains(runs: RunSet) -> list[Gain]:
    """Per task and set: trained and step-0 top-1 per seed, and their paired difference."""
    result = []
    grouped = runs.by_experiment()
    for experiment in EXPERIMENTS:
        for protocol in PROTOCOLS:
            trained, initial, gain = {}, {}, {}
            for run in grouped.get(experiment, []):
                final, start = run.nn_final(protocol), run.nn_initial(protocol)
                if run.seed is None or final is None or start is None:
                    continue
                trained[run.seed], initial[run.seed] = final, start
                gain[run.seed] = final - start
            result.append(
                Gain(experiment, protocol, aggregate(trained), aggregate(initial), aggregate(gain))
            )
    return result


def report(runs: RunSet) -> tuple[str, dict]:
    """The markdown table, the gains and the target checks; and the same as JSON."""
    columns = default_columns(protocols=tuple(PROTOCOLS))
    table = build_table(runs, columns)
    lines = [table_markdown(table), "Gain over the same run's random init (points, paired):", ""]
    found = gains(runs)
    for item in found:
        lines.append(
            f"- {item.experiment.upper()} on {PROTOCOLS[item.protocol]}: "
            f"{format_stat(item.gain)} (trained {format_stat(item.trained)} vs "
            f"{format_stat(item.initial)}; >= 10 points and beyond the spread: "
            f"{'yes' if item.met else 'no'})"
        )
    random_row = next(row for row in table.rows if row.label == RANDOM_INIT)
    random_ucf = random_row.cells["nn_ucf101_top1"].mean
    checks = {
        "random_init_ucf101_at_most_40": random_ucf is not None
        and random_ucf <= MAX_RANDOM_INIT_UCF101,
        **{
            f"a_task_10_points_above_random_on_{protocol}": any(
                g.met for g in found if g.protocol == protocol
            )
            for protocol in PROTOCOLS
        },
    }
    lines += ["", "Targets:"] + [
        f"- {name}: {'met' if ok else 'NOT met'}" for name, ok in checks.items()
    ]
    data = {
        "table": {
            row.label: {key: stat.to_json() for key, stat in row.cells.items()}
            for row in table.rows
        },
        "gains": {f"{g.experiment}/{g.protocol}": g.gain.to_json() for g in found},
        "targets": checks,
    }
    return "\n".join(lines) + "\n", data


def _completed(runs: RunSet) -> set[tuple[str, int]]:
    return {(r.experiment, r.seed) for r in runs.completed if r.seed is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, default=REPO / "multirun" / "demo_discrimination")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--no-train", action="store_true", help="only read existing runs")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every train.py run")
    args = parser.parse_args()
    if not args.no_train:
        train_missing(args.sweep, args.seeds, args.overrides)
    runs = load_runs([args.sweep], with_checkpoints=False)
    text, data = report(runs)
    print(text)
    (args.sweep / "discrimination.json").write_text(json.dumps(data, indent=1) + "\n")
    (args.sweep / "discrimination.md").write_text(text)


if __name__ == "__main__":
    main()
