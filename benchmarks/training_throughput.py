"""Data pipeline throughput per worker beside the model's training throughput (demo scale).

    python -m benchmarks.training_throughput [--steps 30] [overrides ...]

Measured side by side in one run: puzzles/s and clips/s that one loader worker produces
(one process, one thread, on the demo data), and puzzles/s and clips/s that one training
step of S+T consumes (batches held in memory, so no loading cost). The ratio says how many
workers keep the model fed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import default_collate

from benchmarks.config import compose_train
from ssl_rl.run.training import build_data_and_model


def _items_per_second(dataset: torch.utils.data.Dataset, count: int) -> float:
    torch.set_num_threads(1)
    start = time.perf_counter()
    for i in range(count):
        dataset[i % len(dataset)]  # type: ignore[arg-type]
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. scale=paper")
    args = parser.parse_args()

    cfg = compose_train(["experiment=st", *args.overrides], Path(tempfile.mkdtemp()))
    datamodule, model = build_data_and_model(cfg)
    datamodule.prepare_data()
    datamodule.setup()
    threads = torch.get_num_threads()
    produced = {
        task: _items_per_second(datamodule.train_sets[task], args.items)
        for task in datamodule.tasks
    }

    torch.set_num_threads(threads)
    optimizer = model.optimizer_factory(params=model.parameters())
    batch_size = cfg.data.batch_size
    batch = {
        task: datamodule.finish_parts(
            task, default_collate([datamodule.train_sets[task][i] for i in range(batch_size)])
        )
        for task in datamodule.tasks
    }
    model.train()

    def step() -> None:
        loss = sum(
            model._task_loss(task, parts, model.samplers[task].draw(batch_size, "cpu"))[0]
            for task, parts in batch.items()
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    steps_per_s = args.steps / (time.perf_counter() - start)

    print(f"S+T training step at batch {batch_size} per task, {threads} threads:")
    print(f"  model: {steps_per_s:.2f} steps/s")
    for task, rate in produced.items():
        consumed = steps_per_s * batch_size
        unit = "puzzles" if task == "spatial" else "clips"
        print(
            f"  {task:8s}: one worker produces {rate:7.1f} {unit}/s, the model consumes "
            f"{consumed:7.1f} {unit}/s -> {consumed / rate:.2f} workers needed"
        )


if __name__ == "__main__":
    main()
