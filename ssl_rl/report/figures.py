"""The sweep's figures: NN top-1 over training (Fig. 5), the policy's group choices (Fig. 4)
and the spatial per-permutation error with and without the policy (Fig. 6).

Built on ``matplotlib.figure.Figure`` with the Agg canvas (no display, no pyplot). A figure
whose runs are absent is skipped with a logged warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ssl_rl.figures.policy import (
    draw_group_choices,
    draw_permutation_errors,
    draw_quantile_choices,
    save_png,
)
from ssl_rl.report.runs import Run, RunSet
from ssl_rl.report.table import ablation_label, experiment_order

log = logging.getLogger(__name__)

PROTOCOL_TITLES = {"voc07": "Pascal VOC07", "ucf101": "UCF-101"}
# Fig. 6 pairs (with policy, without policy), the paper's first; the spatial-only pair is
# the fallback for a sweep without the combined runs.
FIG6_PAIRS: tuple[tuple[str, str], ...] = (("st_policy", "st"), ("s_policy", "s"))
FIG4_PREFERRED = "st_policy"


def mean_std_curve(
    series: Sequence[Mapping[int, float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per step (the union of every seed's steps): mean, sample std (NaN under two seeds) and
    the number of seeds that reached it."""
    steps = np.array(sorted({s for one in series for s in one}), dtype=np.int64)
    means, stds, counts = [], [], []
    for step in steps:
        values = [one[int(step)] for one in series if int(step) in one]
        means.append(float(np.mean(values)))
        stds.append(float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"))
        counts.append(len(values))
    return steps, np.array(means), np.array(stds), np.array(counts)


def nn_curve_figure(runs: RunSet, protocols: Sequence[str] = ("voc07", "ucf101")) -> Figure | None:
    """Fig. 5: NN top-1 over training steps per ablation (mean over seeds, ± std band), one
    panel per protocol, the random-init level (mean step-0 value) dashed."""
    grouped = {e: rs for e, rs in runs.by_experiment().items() if any(r.nn_history for r in rs)}
    if not grouped:
        log.warning("fig5: no completed run has a nearest-neighbour history; figure skipped")
        return None
    experiments = experiment_order(grouped)
    colors = colormaps["tab10"]
    fig = Figure(figsize=(6 * len(protocols), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    for index, protocol in enumerate(protocols):
        ax = fig.add_subplot(1, len(protocols), index + 1)
        for number, experiment in enumerate(experiments):
            series = [r.nn_series(protocol) for r in grouped[experiment]]
            series = [s for s in series if s]
            if not series:
                continue
            steps, mean, std, _ = mean_std_curve(series)
            color = colors(number % colors.N)
            label = f"{ablation_label(experiment)} (n={len(series)})"
            ax.plot(steps, 100 * mean, color=color, marker="." if len(steps) < 40 else None,
                    label=label)  # fmt: skip
            low, high = np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1)
            ax.fill_between(steps, 100 * low, 100 * high, color=color, alpha=0.2)
        initial = [v for r in runs.completed if (v := r.nn_initial(protocol)) is not None]
        if initial:
            ax.axhline(100 * float(np.mean(initial)), color="gray", linestyle="--",
                       label="random init")  # fmt: skip
        ax.set_title(f"NN top-1, {PROTOCOL_TITLES.get(protocol, protocol)}")
        ax.set_xlabel("training step")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
    return fig


def pick_policy_run(runs: RunSet) -> Run | None:
    """Fig. 4's run: ``st_policy`` of the lowest seed, else any run with policy episodes."""
    with_episodes = [
        r for r in runs.completed if any(h.group_fractions.size for h in r.policy.values())
    ]
    if not with_episodes:
        return None
    return min(
        with_episodes,
        key=lambda r: (r.experiment != FIG4_PREFERRED, r.seed or 0, r.experiment, str(r.path)),
    )


def group_choices_figure(run: Run, control: Run | None = None, bins: int = 4) -> Figure:
    """Fig. 4, one row per task: (left) the drawn permutations by their validation-error
    quartile, with the same seed's run without policy overlaid; (right) the actions by the
    policy's groups, with the hard share group sizes alone would give."""
    tasks = [t for t, h in run.policy.items() if h.group_fractions.size]
    fig = Figure(figsize=(16, 3.6 * len(tasks)), layout="constrained")
    FigureCanvasAgg(fig)
    for index, task in enumerate(tasks):
        history = run.policy[task]
        label = f"{ablation_label(run.experiment)} seed {run.seed}, {task}"
        ax = fig.add_subplot(len(tasks), 2, 2 * index + 1)
        overlay: dict[str, Sequence[float] | np.ndarray] = {}
        episodes = len(history.quantile_fractions)
        reference = control.policy.get(task) if control is not None else None
        if control and reference and len(reference.quantile_fractions) >= episodes > 0:
            name = f"{ablation_label(control.experiment)}: 1 − hardest-quartile share"
            overlay[name] = reference.quantile_fractions[:episodes, 0]
        if episodes:
            draw_quantile_choices(ax, history.quantile_fractions, overlay=overlay)
        ax.set_title(f"{label}: drawn permutations by validation-error quartile")
        ax = fig.add_subplot(len(tasks), 2, 2 * index + 2)
        fractions = history.group_fractions
        neutral = history.neutral_hard_mass[: len(fractions)]
        overlay = (
            {"1 − hard share from group sizes alone": neutral}
            if len(neutral) == len(fractions)
            else {}
        )
        draw_group_choices(ax, fractions, bins=bins, overlay=overlay)
        ax.set_title(f"{label}: actions by the policy's groups")
    return fig


def pick_control(runs: RunSet, policy_run: Run) -> Run | None:
    """The same seed's run of the matching experiment without policy (st for st_policy)."""
    partner = dict(FIG6_PAIRS).get(policy_run.experiment)
    matches = [r for r in runs.completed if r.experiment == partner and r.seed == policy_run.seed]
    return matches[0] if matches else None


def pick_comparison(runs: RunSet, task: str = "spatial") -> tuple[Run, Run] | None:
    """Fig. 6's pair: (with policy, without policy) of the same, lowest shared seed, both
    with ``task``'s per-permutation error history."""
    measured = {
        (r.experiment, r.seed): r
        for r in runs.completed
        if task in r.policy and r.policy[task].permutation_errors.size and r.seed is not None
    }
    for with_policy, without_policy in FIG6_PAIRS:
        seeds = sorted(
            seed
            for (experiment, seed) in measured
            if experiment == with_policy and (without_policy, seed) in measured
        )
        if seeds:
            return measured[(with_policy, seeds[0])], measured[(without_policy, seeds[0])]
    return None


def permutation_error_comparison(with_policy: Run, without_policy: Run, task: str) -> Figure:
    """Fig. 6: (A) with policy, (B) without, side by side on one colour scale ([0, 1])."""
    fig = Figure(figsize=(13, 5), layout="constrained")
    FigureCanvasAgg(fig)
    image = None
    for index, (letter, run) in enumerate((("A", with_policy), ("B", without_policy))):
        ax = fig.add_subplot(1, 2, index + 1)
        history = run.policy[task]
        image = draw_permutation_errors(ax, history.permutation_errors, history.validation_steps)
        ax.set_title(f"({letter}) {ablation_label(run.experiment)} seed {run.seed}: {task}")
    assert image is not None  # drawn twice above
    fig.colorbar(image, ax=fig.axes, label="validation error")
    fig.suptitle(f"{task} validation error per permutation over time, sorted by mean error")
    return fig


def write_figures(runs: RunSet, out_dir: str | Path, task: str = "spatial") -> dict[str, Path]:
    """Write every figure the runs allow into ``out_dir``; returns {name: path}.

    Fig. 6 shows ``task`` (the paper's: spatial), or the runs' first task if none trained it.
    """
    out_dir = Path(out_dir)
    if task not in runs.task_names and runs.task_names:
        task = runs.task_names[0]
    written: dict[str, Path] = {}
    fig5 = nn_curve_figure(runs)
    if fig5 is not None:
        written["fig5"] = save_png(fig5, out_dir / "fig5_nn_top1.png")
    policy_run = pick_policy_run(runs)
    if policy_run is None:
        log.warning("fig4: no completed run has policy episodes (group choices); figure skipped")
    else:
        control = pick_control(runs, policy_run)
        written["fig4"] = save_png(
            group_choices_figure(policy_run, control), out_dir / "fig4_group_choices.png"
        )
    pair = pick_comparison(runs, task)
    if pair is None:
        pairs = ", ".join(f"{a} + {b}" for a, b in FIG6_PAIRS)
        log.warning(
            "fig6: no pair of completed runs (%s) of one seed has a %s per-permutation error "
            "history (the runs without policy need policy=monitor); figure skipped",
            pairs,
            task,
        )
    else:
        figure = permutation_error_comparison(*pair, task=task)
        written["fig6"] = save_png(figure, out_dir / "fig6_permutation_error.png")
    return written
