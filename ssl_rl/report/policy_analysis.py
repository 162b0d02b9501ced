"""``python -m ssl_rl.report.policy_analysis <sweep> [...]``: the paper's Fig. 4 analysis.

Reads the runs of ``experiment=policy_analysis`` (one experiment name per arm, e.g. the
policy, its no-learning control ``policy.learner.lr=0``, uniform and error-proportional
sampling, all from one checkpoint; ``make policy-analysis``) and writes:

- ``policy_analysis.png``: per arm, the share of drawn permutations in the hardest
  validation-error quartile per episode (25 % = uniform), the validation error E over the
  episodes, and for every policy seed π's excess mass on the hardest groups against its
  shuffled-reward noise band;
- ``fig4_<arm>_seed<k>.png``: the paper's Fig. 4 for one run, the controls overlaid;
- ``policy_analysis.md`` and ``policy_analysis.json``: the numbers per arm and seed.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import combine_pvalues

from ssl_rl.figures.policy import draw_quantile_choices, save_png
from ssl_rl.report.runs import PolicyHistory, Run, load_runs

log = logging.getLogger("ssl_rl.report.policy_analysis")

SMOOTH = 10  # episodes in the moving average of the curves
LATE = 50  # "late" = the last LATE episodes


@dataclass
class Arm:
    """One sampling strategy's runs (one per seed) and their histories of ``task``."""

    name: str
    runs: list[Run]
    histories: list[PolicyHistory]

    @property
    def episodes(self) -> int:
        return min(len(h.quantile_fractions) for h in self.histories)

    def stacked(self, values: str, column: int = 0) -> np.ndarray:
        """(seeds, episodes) of one per-episode series, cut to the shortest run."""
        n = self.episodes
        return np.stack([np.asarray(getattr(h, values))[:n, column] for h in self.histories])

    @property
    def p_values(self) -> list[float]:
        return [h.noise_test["p_value"] for h in self.histories if h.noise_test]


def _noise_test(history: PolicyHistory) -> dict[str, Any]:
    """The run's noise test: an arm with p-values ran it in every seed."""
    assert history.noise_test is not None
    return history.noise_test


def load_arms(paths: Sequence[str | Path], task: str = "spatial") -> list[Arm]:
    """Completed runs with ``task``'s episodes, grouped by experiment name (the arm)."""
    runs = load_runs(paths)
    arms = []
    for name, members in runs.by_experiment().items():
        kept = [r for r in members if task in r.policy and len(r.policy[task].quantile_fractions)]
        if kept:
            arms.append(Arm(name, kept, [r.policy[task] for r in kept]))
    if not arms:
        raise FileNotFoundError(
            f"no completed run with {task} policy episodes below {', '.join(map(str, paths))}"
        )
    return arms


def arm_numbers(arm: Arm) -> dict[str, Any]:
    """What the table reports for one arm (mean ± std over seeds where it applies)."""
    n = arm.episodes
    late = slice(max(0, n - LATE), n)
    hard_share = arm.stacked("quantile_fractions")
    start_error = arm.stacked("episode_errors", 0)
    end_error = arm.stacked("episode_errors", 1)
    rewards = np.stack([np.asarray(h.rewards[:n]) for h in arm.histories])
    numbers: dict[str, Any] = {
        "arm": arm.name,
        "seeds": [r.seed for r in arm.runs],
        "episodes": n,
        "error_first": _mean_std(start_error[:, 0]),
        "error_mid": _mean_std(end_error[:, n // 2 - 1]) if n >= 2 else None,
        "error_last": _mean_std(end_error[:, -1]),
        "hard_quartile_share_all": _mean_std(hard_share.mean(axis=1)),
        "hard_quartile_share_late": _mean_std(hard_share[:, late].mean(axis=1)),
        "reward": _mean_std(rewards.mean(axis=1)),
        "reward_sd_within_run": float(rewards.std(axis=1, ddof=1).mean()) if n > 1 else None,
    }
    if arm.p_values:
        numbers["p_values"] = arm.p_values
        numbers["p_combined"] = float(combine_pvalues(arm.p_values, method="fisher").pvalue)
        tests = [_noise_test(h) for h in arm.histories]
        numbers["hard_mass_excess"] = [test["statistic"] for test in tests]
        numbers["hard_mass_excess_noise_sd"] = [test["null_std"] for test in tests]
    return numbers


def analysis_figure(arms: Sequence[Arm], task: str) -> Figure:
    """Hardest-quartile share, E and π's excess hard mass (with noise band) per episode."""
    with_noise = [(a, h, r) for a in arms for h, r in zip(a.histories, a.runs, strict=True)
                  if h.noise_test]  # fmt: skip
    panels = 3 if with_noise else 2
    fig = Figure(figsize=(10, 3.8 * panels), layout="constrained")
    FigureCanvasAgg(fig)
    colors = colormaps["tab10"]
    share_ax = fig.add_subplot(panels, 1, 1)
    error_ax = fig.add_subplot(panels, 1, 2)
    for index, arm in enumerate(arms):
        color = colors(index % colors.N)
        x = np.arange(1, arm.episodes + 1)
        label = f"{arm.name} (n={len(arm.runs)})"
        _band(share_ax, x, _smooth(arm.stacked("quantile_fractions")), color, label)
        _band(error_ax, x, arm.stacked("episode_errors", 1), color, label)
    share_ax.axhline(0.25, color="black", linestyle=":", label="uniform over permutations")
    share_ax.set_ylabel(f"hardest-quartile share\n({SMOOTH}-episode mean)")
    share_ax.set_title(f"{task}: drawn permutations in the hardest validation-error quartile")
    error_ax.set_ylabel("validation error E after the episode")
    error_ax.set_title(f"{task}: validation error over the episodes (mean ± std over seeds)")
    for ax in (share_ax, error_ax):
        ax.set_xlabel("episode")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    if with_noise:
        ax = fig.add_subplot(panels, 1, 3)
        for index, (arm, history, run) in enumerate(with_noise):
            color = colors(index % colors.N)
            noise = history.noise_test
            assert noise is not None
            neutral = np.asarray(noise["neutral_mass"])
            x = np.arange(1, len(neutral) + 1)
            low = np.asarray(noise["band_low"]) - neutral
            high = np.asarray(noise["band_high"]) - neutral
            ax.fill_between(x, low, high, color=color, alpha=0.15)
            excess = np.asarray(noise["hard_mass"]) - neutral
            label = f"{arm.name} seed {run.seed}: p = {noise['p_value']:.3f}"
            ax.plot(x, excess, color=color, linewidth=1, label=label)
        ax.axhline(0.0, color="black", linestyle=":")
        ax.set_xlabel("episode")
        ax.set_ylabel("π(hard groups) − their share")
        ax.set_title(f"{task}: π's excess mass on the hardest groups; shaded: 5-95 % of "
                     "shuffled-reward replays")  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def run_fig4(arm: Arm, controls: Sequence[Arm], task: str) -> Figure:
    """The paper's Fig. 4 for the arm's first seed, the controls' same-seed shares overlaid."""
    run, history = arm.runs[0], arm.histories[0]
    episodes = len(history.quantile_fractions)
    overlay = {}
    for control in controls:
        for other, other_history in zip(control.runs, control.histories, strict=True):
            if other.seed == run.seed and len(other_history.quantile_fractions) >= episodes:
                share = _smooth(other_history.quantile_fractions[None, :episodes, 0])[0]
                overlay[f"{control.name}: 1 − its hardest share ({SMOOTH}-ep. mean)"] = share
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw_quantile_choices(ax, history.quantile_fractions, overlay=overlay)
    ax.set_title(f"{arm.name} seed {run.seed}, {task}: drawn permutations per episode, by "
                 "validation-error quartile")  # fmt: skip
    return fig


def markdown(numbers: Sequence[dict[str, Any]], task: str) -> str:
    lines = [
        f"# Policy analysis ({task}): the paper's Fig. 4 protocol",
        "",
        "Mean ± std over seeds. Hardest-quartile share: fraction of the drawn permutations in "
        "the quarter of Ψ with the highest validation error at the episode's start (uniform "
        f"sampling: 0.25); late = the last {LATE} episodes. p: shuffled-reward replay test of "
        "'π moved toward the hard groups beyond noise', per seed and combined (Fisher).",
        "",
        "| arm | seeds | episodes | E first | E middle | E last | hardest-quartile share "
        "| late | reward (mean per episode) | p per seed | p combined |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in numbers:
        p_values = ", ".join(f"{p:.3f}" for p in row.get("p_values", [])) or "–"
        combined = f"{row['p_combined']:.3f}" if "p_combined" in row else "–"
        lines.append(
            f"| {row['arm']} | {len(row['seeds'])} | {row['episodes']} | "
            f"{_fmt(row['error_first'])} | {_fmt(row['error_mid'])} | {_fmt(row['error_last'])} "
            f"| {_fmt(row['hard_quartile_share_all'])} | {_fmt(row['hard_quartile_share_late'])} "
            f"| {_fmt(row['reward'], 4)} | {p_values} | {combined} |"
        )
    return "\n".join(lines) + "\n"


def make_analysis(
    paths: Sequence[str | Path], out_dir: str | Path, task: str = "spatial"
) -> dict[str, Any]:
    arms = load_arms(paths, task)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    numbers = [arm_numbers(arm) for arm in arms]
    save_png(analysis_figure(arms, task), out / "policy_analysis.png")
    for arm in arms:
        if arm.p_values:
            controls = [a for a in arms if a is not arm]
            path = out / f"fig4_{arm.name}_seed{arm.runs[0].seed}.png"
            save_png(run_fig4(arm, controls, task), path)
    (out / "policy_analysis.md").write_text(markdown(numbers, task))
    result = {"task": task, "sources": [str(p) for p in paths], "arms": numbers}
    (out / "policy_analysis.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def _smooth(values: np.ndarray) -> np.ndarray:
    """Trailing moving average over episodes (axis 1), shorter at the start."""
    cumulative = np.cumsum(np.pad(values, ((0, 0), (1, 0))), axis=1, dtype=np.float64)
    ends = np.arange(values.shape[1]) + 1
    starts = np.maximum(0, ends - SMOOTH)
    return (cumulative[:, ends] - cumulative[:, starts]) / (ends - starts)


def _band(ax: Any, x: np.ndarray, values: np.ndarray, color: Any, label: str) -> None:
    mean = values.mean(axis=0)
    ax.plot(x, mean, color=color, label=label)
    if values.shape[0] > 1:
        std = values.std(axis=0, ddof=1)
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)


def _mean_std(values: np.ndarray) -> list[float | None]:
    """[mean, sample std]; the std is None (strict JSON) for a single seed."""
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if values.size > 1 else None
    return [float(values.mean()), std]


def _fmt(value: Sequence[float | None] | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    mean, std = value
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="sweep directories of policy_analysis runs")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--task", default="spatial")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = make_analysis(args.paths, args.out, args.task)
    print(markdown(result["arms"], args.task))


if __name__ == "__main__":
    main()
