"""Table 5 of the paper, shaped from a sweep: one row per ablation, mean ± std over seeds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ssl_rl.report.runs import Run, RunSet

# Experiment name -> the paper's ablation label, in Table 5's column order.
ABLATIONS: dict[str, str] = {
    "s": "S",
    "s_policy": "S+P",
    "t": "T",
    "t_policy": "T+P",
    "s_then_t": "S&T",
    "st": "S+T",
    "st_policy": "S+T+P",
}
RANDOM_INIT = "random init"
# The paper's Table 5: full-scale fine-tuning (VOC07 classification mAP, UCF-101 accuracy, %).
PAPER_TABLE5: dict[str, dict[str, float]] = {
    "Pascal VOC07 classification (mAP %)": dict(
        zip(ABLATIONS.values(), (67.6, 71.3, 64.1, 65.9, 69.8, 72.0, 74.2), strict=True)
    ),
    "UCF-101 action recognition (acc %)": dict(
        zip(ABLATIONS.values(), (51.5, 54.6, 52.8, 55.7, 54.2, 57.3, 58.6), strict=True)
    ),
}
MISSING = "–"

Extractor = Callable[[Run], "float | None"]


@dataclass(frozen=True)
class Stat:
    """One cell: the per-seed values and their mean and sample standard deviation."""

    per_seed: dict[int, float]

    @property
    def n(self) -> int:
        return len(self.per_seed)

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.per_seed.values()))) if self.per_seed else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof=1); None below two seeds."""
        if self.n < 2:
            return None
        return float(np.std(list(self.per_seed.values()), ddof=1))

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "n": self.n,
            "per_seed": {str(seed): value for seed, value in self.per_seed.items()},
        }


@dataclass(frozen=True)
class Column:
    """A metric: ``final`` reads it from a completed run, ``initial`` its random-init value
    (None: the metric has no random-init value). Values are fractions, shown in %."""

    key: str
    title: str
    final: Extractor
    initial: Extractor | None = None


@dataclass
class Row:
    label: str
    experiment: str | None
    seeds: list[int]
    cells: dict[str, Stat] = field(default_factory=dict)


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]


def default_columns(
    tasks: Sequence[str] = (), protocols: Sequence[str] = ("voc07", "ucf101")
) -> list[Column]:
    """NN top-1 at the end of pretraining per protocol, then the pretext validation accuracy
    of each task (``RunSet.task_names``: the tasks the runs trained)."""
    titles = {"voc07": "VOC07", "ucf101": "UCF-101"}
    columns = [
        Column(
            key=f"nn_{protocol}_top1",
            title=f"NN top-1 {titles.get(protocol, protocol)} (%)",
            final=partial(Run.nn_final, protocol=protocol),
            initial=partial(Run.nn_initial, protocol=protocol),
        )
        for protocol in protocols
    ]
    columns += [
        Column(
            key=f"pretext_{task}_val_acc",
            title=f"Pretext val acc {task} (%)",
            final=partial(Run.pretext_val_acc, task=task),
        )
        for task in tasks
    ]
    return columns


def ablation_label(experiment: str) -> str:
    return ABLATIONS.get(experiment, experiment)


def experiment_order(experiments: Iterable[str]) -> list[str]:
    """The paper's order (S, S+P, T, T+P, S&T, S+T, S+T+P), unknown names after, by name."""
    names = set(experiments)
    known = [e for e in ABLATIONS if e in names]
    return known + sorted(names - set(ABLATIONS))


def aggregate(per_seed: Mapping[int, float]) -> Stat:
    return Stat(dict(sorted(per_seed.items())))


def build_table(runs: RunSet, columns: Sequence[Column] | None = None) -> Table:
    """The random-init row, then one row per experiment found (excluded runs' experiments
    too, so an ablation whose every seed failed shows with n = 0)."""
    columns = list(columns or default_columns(runs.task_names))
    rows = [random_init_row(runs.completed, columns)]
    grouped = runs.by_experiment()
    every_experiment = {r.experiment for r in runs.runs if r.status != "unreadable"}
    for experiment in experiment_order(every_experiment):
        members = grouped.get(experiment, [])
        row = Row(
            label=ablation_label(experiment),
            experiment=experiment,
            seeds=[r.seed for r in members if r.seed is not None],
        )
        for column in columns:
            row.cells[column.key] = aggregate(_per_seed(members, column.final))
        rows.append(row)
    return Table(columns=columns, rows=rows)


def random_init_row(completed: Sequence[Run], columns: Sequence[Column]) -> Row:
    """Step-0 values, one per seed: the runs of one seed start from the same random trunk
    (or one equally random), so their step-0 values are averaged, not counted as seeds."""
    row = Row(label=RANDOM_INIT, experiment=None, seeds=[])
    seeds: set[int] = set()
    for column in columns:
        values: dict[int, list[float]] = {}
        if column.initial is not None:
            for run in completed:
                value = column.initial(run)
                if value is not None and run.seed is not None:
                    values.setdefault(run.seed, []).append(value)
        seeds.update(values)
        row.cells[column.key] = aggregate({s: float(np.mean(v)) for s, v in values.items()})
    row.seeds = sorted(seeds)
    return row


def format_stat(stat: Stat, row_n: int | None = None, scale: float = 100.0, digits: int = 1) -> str:
    """``mean ± std`` (sample std), ``mean (n=1)`` for a single seed, ``–`` for none; a cell
    with fewer seeds than its row says how many."""
    mean = stat.mean
    if mean is None:
        return MISSING
    text = f"{mean * scale:.{digits}f}"
    if stat.n == 1:
        return f"{text} (n=1)"
    text = f"{text} ± {stat.std * scale:.{digits}f}"  # type: ignore[operator]
    if row_n is not None and stat.n != row_n:
        text += f" (n={stat.n})"
    return text


def table_markdown(table: Table) -> str:
    header = ["Ablation", "Experiment", *[c.title for c in table.columns], "n seeds"]
    lines = [_md_row(header), _md_row(["---"] * len(header))]
    for row in table.rows:
        cells = [format_stat(row.cells[c.key], len(row.seeds)) for c in table.columns]
        lines.append(_md_row([row.label, row.experiment or MISSING, *cells, str(len(row.seeds))]))
    return "\n".join(lines) + "\n"


def paper_table_markdown() -> str:
    header = ["Paper, Table 5", *ABLATIONS.values()]
    lines = [_md_row(header), _md_row(["---"] * len(header))]
    for metric, values in PAPER_TABLE5.items():
        lines.append(_md_row([metric, *[f"{values[a]:.1f}" for a in ABLATIONS.values()]]))
    return "\n".join(lines) + "\n"


def table_json(table: Table) -> dict[str, Any]:
    """Machine-readable table: per row and column, mean, std, n and per-seed values
    (fractions, as recorded by the runs)."""
    return {
        "unit": "fraction",
        "std": "sample (ddof=1)",
        "columns": [{"key": c.key, "title": c.title} for c in table.columns],
        "rows": [
            {
                "ablation": row.label,
                "experiment": row.experiment,
                "n": len(row.seeds),
                "seeds": row.seeds,
                "values": {key: stat.to_json() for key, stat in row.cells.items()},
            }
            for row in table.rows
        ],
        "paper_table5": PAPER_TABLE5,
    }


def excluded_markdown(runs: RunSet) -> str:
    """The runs left out of the statistics, with why."""
    excluded = runs.excluded
    if not excluded:
        return "None: every run found completed.\n"
    lines = [_md_row(["Experiment", "Seed", "Status", "Error", "Directory"])]
    lines.append(_md_row(["---"] * 5))
    for run in sorted(excluded, key=lambda r: (r.experiment, r.seed or -1, str(r.path))):
        status = "superseded" if run.superseded_by is not None else run.status
        seed = MISSING if run.seed is None else str(run.seed)
        error = run.error_line or MISSING
        lines.append(_md_row([run.experiment, seed, status, error, str(run.path)]))
    return "\n".join(lines) + "\n"


def runs_markdown(runs: RunSet, columns: Sequence[Column]) -> str:
    """Every counted run with its own values."""
    header = ["Experiment", "Seed", "Steps", "Wall time (s)", *[c.title for c in columns]]
    lines = [_md_row(header), _md_row(["---"] * len(header))]
    for experiment, members in _ordered(runs.by_experiment()):
        for run in members:
            values = []
            for column in columns:
                value = column.final(run)
                values.append(MISSING if value is None else f"{100 * value:.1f}")
            steps = run.summary.get("steps", MISSING)
            wall = run.summary.get("wall_time_s", MISSING)
            lines.append(_md_row([experiment, str(run.seed), str(steps), str(wall), *values]))
    return "\n".join(lines) + "\n"


def _ordered(grouped: Mapping[str, list[Run]]) -> list[tuple[str, list[Run]]]:
    return [(e, grouped[e]) for e in experiment_order(grouped)]


def _per_seed(runs: Sequence[Run], extract: Extractor) -> dict[int, float]:
    values: dict[int, float] = {}
    for run in runs:
        value = extract(run)
        if value is not None and run.seed is not None:
            values[run.seed] = value
    return values


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def report_markdown(
    runs: RunSet, table: Table, figures: Mapping[str, Any], finetune_failures: str = ""
) -> str:
    """``report.md``: the table, the paper's numbers for reference, the runs, the figures."""
    sources = ", ".join(f"`{p}`" for p in runs.sources)
    parts = [
        "# Ablation report (the paper's Table 5 and Figs. 4–6)\n",
        f"Sweeps: {sources}. Runs found: {len(runs.runs)}; counted (completed): "
        f"{len(runs.completed)}; excluded: {len(runs.excluded)}.\n",
        "## Ablations\n",
        "Mean ± sample std (ddof=1) over seeds, in %. NN top-1: pool5 features, cosine "
        "nearest neighbour, test queries against the training gallery, at the end of "
        "pretraining (random init: the same at step 0, one value per seed). Pretext val acc: "
        f"permutation-classification accuracy on the pretext validation split; {MISSING} where "
        "the task is not trained. A cell over fewer seeds than its row says (n=k).\n",
        table_markdown(table),
        "## The paper's Table 5, for reference only\n",
        "Full-scale fine-tuning results of the paper (ImageNet / UCF-101 pretraining, "
        "supervised fine-tuning on VOC07 classification and UCF-101 actions). They are not "
        "the metrics above and not comparable to them; only the ordering of the ablations "
        "is.\n",
        paper_table_markdown(),
        "## Runs counted\n",
        runs_markdown(runs, table.columns),
        "## Runs excluded from the statistics\n",
        excluded_markdown(runs),
    ]
    if finetune_failures:
        parts += ["## Fine-tuning failures\n", finetune_failures]
    parts.append("## Figures\n")
    for name, caption in FIGURE_CAPTIONS.items():
        path = figures.get(name)
        parts.append(
            f"- {caption}: ![{name}]({Path(path).name})\n"
            if path
            else f"- {caption}: skipped (the runs it needs are absent; see the log)\n"
        )
    return "\n".join(parts)


FIGURE_CAPTIONS = {
    "fig5": "Fig. 5, NN top-1 over training per ablation (mean ± std over seeds)",
    "fig4": "Fig. 4, the policy's group choices per episode",
    "fig6": "Fig. 6, spatial validation error per permutation, (A) with policy, (B) without",
}
