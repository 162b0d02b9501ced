"""Cheap all-permutation validation scoring versus permuting the inputs, at paper shapes.

Run: `python -m benchmarks.validation_scoring [--device cpu|cuda]`.

The cheap path runs trunk + fc6 once on the |X_val|·n parts and then `score_all_orders` for all
|Ψ| orders. The naive path permutes the raw parts and runs the full model for every
(sample, order) pair; it is timed on a random subset of pairs and extrapolated linearly to all
|X_val|·|Ψ| pairs. On CPU the cheap path is by default also timed on a subset of X_val (all its
work is per sample, so it scales linearly) to keep the run short; `--cheap-val 100` times it
in full. Weights and inputs are random: only shapes matter for the timing.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ssl_rl.nets import CaffeNetTrunk, OrderHead, SpatialOrderHead, TemporalOrderHead

MIB = 2**20


@dataclass
class CheapResult:
    seconds: float
    cpu_seconds: float
    logits: Tensor
    chunk_size: int
    trunk_activation_bytes: int
    output_bytes: int
    rss_growth_bytes: int
    cuda_peak_bytes: int | None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _trunk_activation_bytes(trunk: CaffeNetTrunk, tile: int, batch: int) -> int:
    """Bytes of the largest trunk activation (the input or one layer output) for a batch."""
    sizes = trunk.layer_sizes(tile)
    channels = {f"conv{i + 1}": c for i, c in enumerate(trunk.channels)}
    channels |= {"pool1": channels["conv1"], "pool2": channels["conv2"], "pool5": channels["conv5"]}
    largest = max(channels[name] * h * w for name, (h, w) in sizes.items())
    return batch * max(largest, trunk.in_channels * tile * tile) * 4


def _distinct_orders(num_orders: int, num_parts: int, generator: torch.Generator) -> Tensor:
    """Random distinct permutations (stand-in for Ψ: the timing depends on shapes only)."""
    seen: dict[tuple[int, ...], None] = {}
    while len(seen) < num_orders:
        seen.setdefault(tuple(torch.randperm(num_parts, generator=generator).tolist()), None)
    return torch.tensor(list(seen))


def _time(fn: Callable[[], Tensor], device: torch.device) -> tuple[float, float, Tensor]:
    """Wall-clock and process CPU seconds of fn (CPU time shows contention on a shared host)."""
    _sync(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, time.process_time() - start_cpu, out


def run_cheap(
    trunk: CaffeNetTrunk,
    head: OrderHead,
    parts: Tensor,
    orders: Tensor,
    chunk_size: int | None,
    trunk_batch: int,
) -> CheapResult:
    device = parts.device
    num_val = parts.shape[0]
    chunk = min(chunk_size or head.auto_chunk_size(num_val), orders.shape[0])

    def cheap() -> Tensor:
        features = torch.cat(
            [
                head.part_features(trunk.forward_parts(parts[i : i + trunk_batch]))
                for i in range(0, num_val, trunk_batch)
            ]
        )
        return head.score_all_orders(features, orders, chunk_size=chunk)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = _peak_rss_bytes()
    seconds, cpu_seconds, logits = _time(cheap, device)
    return CheapResult(
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        logits=logits,
        chunk_size=chunk,
        trunk_activation_bytes=_trunk_activation_bytes(
            trunk, parts.shape[-1], min(trunk_batch, num_val) * parts.shape[1]
        ),
        output_bytes=logits.numel() * logits.element_size(),
        rss_growth_bytes=_peak_rss_bytes() - rss_before,
        cuda_peak_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
    )


def run_naive_subset(
    trunk: CaffeNetTrunk,
    head: OrderHead,
    parts: Tensor,
    orders: Tensor,
    num_pairs: int,
    batch: int,
    generator: torch.Generator,
) -> tuple[float, float, Tensor, Tensor, Tensor]:
    """Time the full model on `num_pairs` random (sample, order) pairs with permuted inputs."""
    sample_idx = torch.randint(parts.shape[0], (num_pairs,), generator=generator)
    order_idx = torch.randint(orders.shape[0], (num_pairs,), generator=generator)
    device = parts.device
    sample_idx, order_idx = sample_idx.to(device), order_idx.to(device)
    orders = orders.to(device)

    def naive() -> Tensor:
        outputs = []
        for i in range(0, num_pairs, batch):
            v, q = sample_idx[i : i + batch], order_idx[i : i + batch]
            permuted = parts[v.unsqueeze(1), orders[q]]  # (b, n, C, H, W)
            outputs.append(head(trunk.forward_parts(permuted)))
        return torch.cat(outputs)

    seconds, cpu_seconds, logits = _time(naive, device)
    return seconds, cpu_seconds, logits, sample_idx, order_idx


def benchmark_task(name: str, head: OrderHead, trunk: CaffeNetTrunk, args, device) -> None:
    generator = torch.Generator().manual_seed(args.seed)
    n = head.num_parts
    parts = torch.randn(args.cheap_val, n, 3, args.tile, args.tile, generator=generator).to(device)
    orders = _distinct_orders(args.num_orders, n, generator).to(device)
    full_chunk = min(args.chunk_size or head.auto_chunk_size(args.num_val), args.num_orders)

    with torch.inference_mode():  # warm-up: first-call kernel selection and allocation
        head.score_all_orders(
            head.part_features(trunk.forward_parts(parts[:2])), orders[:8], chunk_size=4
        )
        head(trunk.forward_parts(parts[:2]))
        # The chunk size of the full |X_val|, so the measured work per sample is the real one.
        cheap = run_cheap(trunk, head, parts, orders, full_chunk, args.trunk_batch)
        naive_s, naive_cpu_s, naive_logits, v, q = run_naive_subset(
            trunk, head, parts, orders, args.naive_pairs, args.naive_batch, generator
        )
    total_pairs = args.num_val * args.num_orders
    naive_total = naive_s * total_pairs / args.naive_pairs
    cheap_scale = args.num_val / args.cheap_val
    cheap_total = cheap.seconds * cheap_scale
    max_diff = (cheap.logits[v, q] - naive_logits).abs().max().item()

    print(f"\n== {name}: |X_val|={args.num_val}, |Ψ|={args.num_orders}, n={n}, tile {args.tile}px")
    print(
        f"cheap path (trunk+fc6 on {args.cheap_val * n} parts, then all orders in chunks of "
        f"{cheap.chunk_size}): measured {cheap.seconds:.2f} s "
        f"(process CPU {cheap.cpu_seconds:.1f} s) on {args.cheap_val} samples"
        + (
            f" -> linear extrapolation to {args.num_val} samples: {cheap_total:.2f} s"
            if args.cheap_val != args.num_val
            else ""
        )
    )
    print(
        f"naive path: measured {naive_s:.2f} s (process CPU {naive_cpu_s:.1f} s) on "
        f"{args.naive_pairs} random (sample, order) "
        f"pairs (batches of {args.naive_batch}) -> linear extrapolation to {total_pairs} pairs: "
        f"{naive_total:.0f} s ({naive_total / 3600:.2f} h)"
    )
    print(f"speed-up (naive / cheap, per (sample, order) pair): {naive_total / cheap_total:.0f}x")
    print(f"max |cheap - naive| logit difference on the measured pairs: {max_diff:.2e}")
    print(
        f"cheap-path memory (analytic, |X_val|={args.num_val}): largest trunk activation "
        f"{cheap.trunk_activation_bytes / MIB:.0f} MiB (batches of {args.trunk_batch} samples), "
        f"scoring intermediates {head.scoring_bytes(args.num_val, full_chunk) / MIB:.0f} MiB "
        f"(chunks of {full_chunk}), returned logits "
        f"{cheap.output_bytes * cheap_scale / MIB:.0f} MiB"
    )
    if cheap.cuda_peak_bytes is not None:
        print(
            f"cheap-path CUDA peak allocated ({args.cheap_val} samples): "
            f"{cheap.cuda_peak_bytes / MIB:.0f} MiB"
        )
    print(
        f"process peak-RSS growth during the cheap path ({args.cheap_val} samples; peak RSS is "
        f"process-wide, so a later task shows only growth beyond earlier peaks): "
        f"{cheap.rss_growth_bytes / MIB:.0f} MiB"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--num-val", type=int, default=100, help="|X_val| per task [paper]")
    parser.add_argument("--num-orders", type=int, default=1000, help="|Ψ| per task [paper]")
    parser.add_argument("--tile", type=int, default=64, help="tile / frame size in px")
    parser.add_argument("--width", type=float, default=1.0, help="trunk channel multiplier")
    parser.add_argument("--chunk-size", type=int, default=None, help="orders per chunk (auto)")
    parser.add_argument("--trunk-batch", type=int, default=25, help="samples per trunk pass")
    parser.add_argument("--cheap-val", type=int, default=None, help="samples timed (cheap)")
    parser.add_argument("--naive-pairs", type=int, default=None, help="pairs timed (naive)")
    parser.add_argument("--naive-batch", type=int, default=16, help="pairs per naive batch")
    parser.add_argument("--tasks", default="spatial,temporal")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    if args.naive_pairs is None:
        args.naive_pairs = 2048 if on_gpu else 64
    if args.cheap_val is None:
        args.cheap_val = args.num_val if on_gpu else min(25, args.num_val)
    if not 1 <= args.cheap_val <= args.num_val:
        raise ValueError(f"--cheap-val must be in 1..{args.num_val}, got {args.cheap_val}")
    torch.manual_seed(args.seed)
    trunk = CaffeNetTrunk(width=args.width, conv1_stride=2).to(device).eval()
    in_dim = trunk.output_dim(args.tile)
    print(
        f"device {device} ({torch.get_num_threads()} CPU threads), CaffeNet-BN width "
        f"{args.width}, pool5 dim {in_dim}, torch {torch.__version__}"
    )
    heads = {
        "spatial": lambda: SpatialOrderHead(in_dim, num_parts=9, num_classes=args.num_orders),
        "temporal": lambda: TemporalOrderHead(in_dim, num_parts=8, num_classes=args.num_orders),
    }
    for name in args.tasks.split(","):
        head = heads[name]().to(device).eval()
        benchmark_task(name, head, trunk, args, device)


if __name__ == "__main__":
    main()
