"""``python -m ssl_rl.report <multirun dir> [...]``: Table 5 and Figs. 4–6 from a sweep."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ssl_rl.report.figures import write_figures
from ssl_rl.report.runs import RunSet, load_runs
from ssl_rl.report.table import (
    MISSING,
    Table,
    build_table,
    default_columns,
    report_markdown,
    table_json,
    table_markdown,
)

log = logging.getLogger("ssl_rl.report")


@dataclass
class Report:
    runs: RunSet
    table: Table
    figures: dict[str, Path]
    out_dir: Path


def make_report(
    paths: Sequence[str | Path],
    out_dir: str | Path | None = None,
    finetune_tasks: Sequence[str] = (),
    finetune_overrides: Sequence[str] = (),
    force_finetune: bool = False,
) -> Report:
    """Load the runs below ``paths``, (optionally) fine-tune them, write ``report.md``,
    ``results.json`` and the figures into ``out_dir`` (default ``<first path>/report``)."""
    if not paths:
        raise ValueError("pass at least one sweep directory")
    runs = load_runs(paths)
    if not runs.runs:
        raise FileNotFoundError(
            f"no summary.json of a train.py run below {', '.join(map(str, paths))}; pass the "
            "multirun directory of `python train.py -m experiment=... seed=...`"
        )
    out = Path(out_dir) if out_dir is not None else Path(paths[0]) / "report"
    out.mkdir(parents=True, exist_ok=True)
    columns = default_columns(runs.task_names)
    if finetune_tasks:
        # Lazy: fine-tuning pulls in Lightning, which a plain report does not need.
        from ssl_rl.report.evaluate import finetune_runs

        columns += finetune_runs(runs, finetune_tasks, finetune_overrides, force_finetune)
    table = build_table(runs, columns)
    figures = write_figures(runs, out)
    (out / "report.md").write_text(
        report_markdown(runs, table, figures, _finetune_failures(runs, finetune_tasks))
    )
    results = {
        "sources": [str(p) for p in runs.sources],
        **table_json(table),
        "excluded": [
            {
                "experiment": r.experiment,
                "seed": r.seed,
                "status": "superseded" if r.superseded_by is not None else r.status,
                "error": r.error_line,
                "path": str(r.path),
            }
            for r in runs.excluded
        ],
        "figures": {name: path.name for name, path in figures.items()},
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    log.info("report written to %s", out)
    return Report(runs=runs, table=table, figures=figures, out_dir=out)


def _finetune_failures(runs: RunSet, tasks: Sequence[str]) -> str:
    rows = [
        f"| {run.experiment} | {run.seed} | {task} | {run.finetune_errors[task]} |"
        for run in runs.completed
        for task in tasks
        if task in run.finetune_errors
    ]
    if not rows:
        return ""
    return "\n".join(["| Experiment | Seed | Task | Error |", "| --- | --- | --- | --- |", *rows])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ssl_rl.report",
        description="Table 5 (Markdown + JSON) and Figs. 4-6 (PNG) from train.py multiruns.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="sweep (multirun) directories")
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: <first path>/report)"
    )
    parser.add_argument(
        "--finetune",
        action="append",
        default=[],
        metavar="TASK",
        help="also run finetune.py's TASK (nn_demo, voc07_cls, ...) on every completed run "
        "and add its metrics as columns; repeatable",
    )
    parser.add_argument(
        "--finetune-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Hydra override for finetune.yaml (e.g. trainer.max_steps=100); repeatable",
    )
    parser.add_argument(
        "--force-finetune",
        action="store_true",
        help="redo fine-tuning even where <run>/finetune/<task>/summary.json completed",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = make_report(
            args.paths, args.out, args.finetune, args.finetune_override, args.force_finetune
        )
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table_markdown(report.table))
    excluded = report.runs.excluded
    if excluded:
        print(f"{len(excluded)} run(s) excluded (failed, incomplete or superseded):")
        for run in excluded:
            print(f"  {run.experiment} seed {run.seed if run.seed is not None else MISSING}: "
                  f"{run.status}: {run.error_line}")  # fmt: skip
    print(f"report: {report.out_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
