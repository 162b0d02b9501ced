"""Policy overhead: wall time of ``st_policy`` ÷ ``st`` at equal steps (paper: about 1.40).

    python -m benchmarks.policy_overhead [--steps 330] [overrides ...]

Both runs use the same config apart from the policy, in one process, one after the other;
data generation and permutation caching happen before either timer starts.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.config import compose_train
from ssl_rl.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=330)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="policy_overhead_"))
    common = [
        f"trainer.max_steps={args.steps}",
        "trainer.val_check_interval=1000000",
        "~callbacks.progress_bar",
        "trainer.enable_progress_bar=false",
        *args.overrides,
    ]
    # Warm-up: demo data and permutation sets exist before timing.
    train(compose_train(["experiment=st", "trainer.max_steps=1", *args.overrides], workdir / "w"))
    times = {}
    for experiment in ("st", "st_policy"):
        cfg = compose_train([f"experiment={experiment}", *common], workdir / experiment)
        start = time.perf_counter()
        summary = train(cfg)
        times[experiment] = time.perf_counter() - start
        print(f"{experiment:10s} {summary['steps']} steps in {times[experiment]:.1f} s")
    ratio = times["st_policy"] / times["st"]
    print(f"policy overhead: st_policy / st = {ratio:.3f} (target <= 1.10; paper ~1.40)")
    print(json.dumps({"steps": args.steps, "seconds": times, "ratio": round(ratio, 4)}))


if __name__ == "__main__":
    main()
