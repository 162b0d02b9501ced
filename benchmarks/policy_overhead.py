"""Policy overhead against basic training (paper: about 1.40).

    python -m benchmarks.policy_overhead [--steps 330] [overrides ...]        # demo, whole runs
    python -m benchmarks.policy_overhead --paper-shapes [--batch 256]         # paper, components

Demo: three whole runs of the same config in one process, one after the other: ``st
policy=none`` (basic training: no validations at all), ``st`` (the monitor: the policy's
validations, uniform sampling) and ``st_policy``; printed as ratios to the basic run. Data
generation and permutation caching happen before any timer starts.

Paper shapes: whole runs are hours, so the cost is assembled from components measured side by
side on this device (bf16 autocast on CUDA): one S+T training step at the paper's shapes, one
all-ψ validation per task (|Ψ| = 1000, |X_val| = 100), one k-means grouping and one REINFORCE
update; per cycle of ``interval + episode_steps`` steps the policy adds two validations and two
groupings per task and one update per task, the monitor the validations only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from benchmarks.config import compose_train
from benchmarks.paper_step import paper_model, random_parts, training_step
from ssl_rl.policy.groups import group_permutations
from ssl_rl.policy.network import PolicyNetwork
from ssl_rl.policy.reinforce import ReinforceLearner
from ssl_rl.run.training import train

RUNS = {"basic": ["experiment=st", "policy=none"], "monitor": ["experiment=st"],
        "policy": ["experiment=st_policy"]}  # fmt: skip


def demo(steps: int, overrides: list[str]) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="policy_overhead_"))
    common = [
        f"trainer.max_steps={steps}",
        "trainer.val_check_interval=1000000",
        "~callbacks.progress_bar",
        "trainer.enable_progress_bar=false",
        *overrides,
    ]
    # Warm-up: demo data and permutation sets exist before timing.
    train(compose_train(["experiment=st", "trainer.max_steps=1", *overrides], workdir / "w"))
    seconds = {}
    for name, selection in RUNS.items():
        cfg = compose_train([*selection, *common], workdir / name)
        start = time.perf_counter()
        summary = train(cfg)
        seconds[name] = time.perf_counter() - start
        print(
            f"{name:8s} ({' '.join(selection)}): {summary['steps']} steps in {seconds[name]:.1f} s"
        )
    return seconds


def _timed(
    fn: Callable[[], object], device: torch.device, repeat: int, warm_up: bool = True
) -> tuple[float, object]:
    """Mean seconds per call over ``repeat`` calls, and the last call's result."""
    if warm_up:
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat, result


def paper_shapes(batch: int, repeat: int, overrides: list[str]) -> dict[str, float]:
    cfg, model, device = paper_model(overrides)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )
    step = training_step(model, random_parts(model, batch, device), device)
    seconds = {"step": _timed(step, device, repeat)[0]}
    holdout = cfg.data.policy_holdout
    learner = ReinforceLearner(PolicyNetwork(cfg.policy.num_groups, cfg.policy.hidden,
                                             neutral_start=True), **cfg.policy.learner)  # fmt: skip
    k, inits = cfg.policy.num_groups, cfg.policy.kmeans_inits
    for task in model.tasks:
        x_val = random_parts(model, holdout, device)[task]
        with autocast:  # the training step warmed the kernels up; one call is minutes on a CPU
            seconds[f"validate_{task}"], s = _timed(
                lambda t=task, x=x_val: model.validation_ratios(t, x), device, 1, False
            )
        seconds[f"group_{task}"], groups = _timed(
            lambda s=s: group_permutations(s.cpu(), k=k, n_init=inits), device, 2
        )
        actions = torch.randint(k, (cfg.policy_timing.episode_steps,))  # one per step
        seconds[f"update_{task}"] = _timed(
            lambda g=groups, a=actions: learner.record(g.state, a, 0.01), device, 5
        )[0]
    interval, episode = cfg.policy_timing.interval, cfg.policy_timing.episode_steps
    basic = (interval + episode) * seconds["step"]
    validations = sum(2 * v for k, v in seconds.items() if k.startswith("validate_"))
    policy_extra = sum(2 * v for k, v in seconds.items() if k.startswith("group_")) + sum(
        v for k, v in seconds.items() if k.startswith("update_")
    )
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"paper shapes on {name}, batch {batch} per task, cycle {interval} + {episode} steps:")
    for part, value in seconds.items():
        print(f"  {part:20s} {1000 * value:10.1f} ms")
    ratios = {"monitor": (basic + validations) / basic,
              "policy": (basic + validations + policy_extra) / basic}  # fmt: skip
    return {**seconds, **{f"ratio_{k}": v for k, v in ratios.items()}, "batch": batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=330)
    parser.add_argument("--paper-shapes", action="store_true")
    parser.add_argument("--batch", type=int, default=256, help="paper shapes: batch per task")
    parser.add_argument("--repeat", type=int, default=3, help="paper shapes: timed steps")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides")
    args = parser.parse_args()
    if args.paper_shapes:
        result = paper_shapes(args.batch, args.repeat, args.overrides)
        print(f"monitor / basic = {result['ratio_monitor']:.4f}")
        print(f"policy / basic  = {result['ratio_policy']:.4f} (paper: ~1.40)")
    else:
        seconds = demo(args.steps, args.overrides)
        result = {"steps": args.steps, "seconds": seconds,
                  "ratio_monitor": seconds["monitor"] / seconds["basic"],
                  "ratio_policy": seconds["policy"] / seconds["basic"]}  # fmt: skip
        print(f"monitor / basic (st / st policy=none)        = {result['ratio_monitor']:.3f}")
        print(f"policy / basic  (st_policy / st policy=none) = {result['ratio_policy']:.3f} "
              "(target <= 1.10; paper ~1.40)")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
