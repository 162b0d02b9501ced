"""Time Ψ generation (exact greedy) against a cached load: `python -m benchmarks.permutations`."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

import torch

from ssl_rl.permutations import hamming_stats, load_permutations

# (label, n_parts, n_perms, merge_reverse)
CASES = [
    ("spatial 3x3 jigsaw, exact", 9, 1000, False),
    ("temporal u=8, exact", 8, 1000, False),
    ("temporal u=8, reverse-merged", 8, 1000, True),
]
CACHED_REPEATS = 20


def _timed(fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = f"{'set':32s} {'n':>2s} {'|Ψ|':>5s} {'generate s':>11s} {'cached ms':>10s}"
    print(header + f" {'ratio':>8s} {'min d':>6s} {'mean d':>7s}")
    with tempfile.TemporaryDirectory() as cache_dir:
        for label, n_parts, n_perms, merge in CASES:

            def load(n=n_parts, k=n_perms, m=merge) -> torch.Tensor:
                return load_permutations(n, k, seed=0, cache_dir=cache_dir, merge_reverse=m)

            cold, perms = _timed(load)
            cached = min(_timed(load)[0] for _ in range(CACHED_REPEATS))
            minimum, mean = hamming_stats(perms, merge_reverse=merge)
            print(
                f"{label:32s} {n_parts:2d} {n_perms:5d} {cold:11.3f} {cached * 1e3:10.3f} "
                f"{cold / cached:8.0f} {minimum:6d} {mean:7.3f}"
            )
    print("generate = first load into an empty cache (greedy pass + atomic write);")
    print(f"cached = best of {CACHED_REPEATS} loads of the cached file (read + validation).")
    print("min d / mean d = pairwise Hamming (class distance for the reverse-merged set).")


if __name__ == "__main__":
    main()
