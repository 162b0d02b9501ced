"""Eq. 7's two baselines side by side on the same recorded validations.

    python -m benchmarks.reward_baselines <run or sweep dir> [...]

For every policy episode of every run found (``summary.json`` + ``checkpoints/last.ckpt``),
the reward under ``paper`` (2 E_t − E_{t−1}) and under ``scaled`` (the trend E_t − E_{t−1}
rescaled to the episode's length) is recomputed from the run's own validations, so both are
measured on one and the same training trajectory. Prints per run and pooled: mean and standard
deviation of the reward.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from ssl_rl.policy.reward import BASELINES, extrapolated_reward, span_ratio
from ssl_rl.report.runs import PolicyHistory, load_runs


def episode_rewards(history: PolicyHistory, episode_steps: int) -> dict[str, np.ndarray]:
    """Rewards of every closed episode under each baseline, from the recorded validations."""
    steps, errors = history.validation_steps, history.errors
    index = {step: i for i, step in enumerate(steps)}
    rewards: dict[str, list[float]] = {name: [] for name in BASELINES}
    for closed in history.episode_steps:
        end = index[closed]
        start = index[closed - episode_steps]
        before = start - 1 if start > 0 else None
        window = [errors[before], errors[start]] if before is not None else [errors[start]]
        span = steps[start] - steps[before] if before is not None else 0
        for name in BASELINES:
            ratio = span_ratio(name, episode_steps, span)
            rewards[name].append(extrapolated_reward(window, errors[end], ratio))
    return {name: np.asarray(values) for name, values in rewards.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--episode-steps", type=int, required=True, help="policy_timing value")
    args = parser.parse_args(argv)
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in BASELINES}
    for run in load_runs(args.paths).completed:
        for task, history in run.policy.items():
            if not history.episode_steps:
                continue
            rewards = episode_rewards(history, args.episode_steps)
            cells = "  ".join(
                f"{n}: {v.mean():+.4f} ± {v.std(ddof=1):.4f}" for n, v in rewards.items()
            )
            print(f"{run.experiment} seed {run.seed} {task} ({len(rewards['paper'])} ep.)  {cells}")
            for name, values in rewards.items():
                pooled[name].append(values)
    print("pooled over runs and tasks:")
    for name, parts in pooled.items():
        values = np.concatenate(parts) if parts else np.zeros(0)
        if values.size > 1:
            print(f"  {name:7s} mean {values.mean():+.4f}  std {values.std(ddof=1):.4f}  "
                  f"n {values.size}")  # fmt: skip


if __name__ == "__main__":
    main()
