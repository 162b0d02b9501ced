"""The run's speed report: windows, exclusions, FLOPs, summary.json and the end table."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ssl_rl.callbacks import throughput
from ssl_rl.callbacks.throughput import ThroughputMonitor
from ssl_rl.run.end_report import end_report
from ssl_rl.run.training import build_data_and_model, train


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_windows_exclude_paused_time_and_count_the_wait_between_steps(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(throughput.time, "perf_counter", clock)
    monitor = ThroughputMonitor(every_n_steps=2)
    loader = SimpleNamespace(wait_seconds=0.0)  # the training loader times its own waits
    trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
        precision="32-true",
        loggers=[],
        global_step=0,
        train_dataloader=loader,
    )
    batch = {"spatial": torch.zeros(4, 1), "temporal": torch.zeros(2, 1)}
    monitor.on_train_start(trainer, None)
    steps = [(0.5, 1.0, 0.0), (0.5, 1.0, 5.0), (0.25, 0.75, 0.0), (0.25, 0.75, 0.0)]
    for gap, work, paused in steps:
        clock.now += gap  # between steps, of which the loader waited half
        loader.wait_seconds += gap / 2
        monitor.on_train_batch_start(trainer, None, batch, 0)
        monitor.on_evaluation_start(trainer)  # e.g. the policy's validation
        clock.now += paused
        monitor.on_evaluation_end(trainer)
        clock.now += work
        trainer.global_step += 1
        monitor.on_train_batch_end(trainer, None, None, batch, 0)
        monitor.on_evaluation_start(trainer)  # e.g. the NN monitor, between two steps
        clock.now += paused
        monitor.on_evaluation_end(trainer)
    first, second = monitor.windows
    # The first step's own gap is start-up, not counted (no step ended before it).
    assert first["steps_per_s"] == pytest.approx(2 / 3.0)
    assert first["between_steps_fraction"] == pytest.approx(0.5 / 3.0)
    assert first["data_wait_fraction"] == pytest.approx(0.25 / 3.0)
    assert second["steps_per_s"] == pytest.approx(2 / 2.0)
    assert second["samples_per_s"] == {"spatial": pytest.approx(4.0), "temporal": 2.0}
    summary = monitor.summary()
    assert summary["measured_steps"] == 2  # the first window is start-up
    assert summary["steps_per_s"] == pytest.approx(1.0)
    assert summary["data_wait_fraction"] == pytest.approx(0.25 / 2.0)
    assert summary["between_steps_fraction"] == pytest.approx(0.5 / 2.0)
    assert summary["mfu"] is None  # no FLOP count, no known peak on a CPU


def test_step_flops_are_counted_on_meta_weights_as_a_real_step_counts_them(compose_train):
    _, model = build_data_and_model(compose_train(["experiment=st"]))
    batch = {
        name: torch.randn(3, task.num_parts, 3, task.part_size, task.part_size)
        for name, task in model.tasks.items()
    }
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    counted = model.count_step_flops(batch)
    assert torch.equal(rng, torch.get_rng_state())  # no dropout draw, no side effect
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[name]), name  # BN statistics untouched
    counter = FlopCounterMode(display=False)
    with counter:
        loss = sum(
            torch.nn.functional.cross_entropy(model(task, parts), torch.zeros(3, dtype=torch.long))
            for task, parts in batch.items()
        )
        loss.backward()
    # A real CPU (oneDNN) or CUDA (cuDNN) LSTM is one opaque kernel the counter does not see;
    # on meta weights the LSTM runs as its matrix products, so they are counted: the gates'
    # products forward, and backward for inputs and weights, less the gradient of h0.
    head = model.heads["temporal"]
    b, n, f, h = 3, head.num_parts, head.lstm.input_size, head.lstm.hidden_size
    lstm = 3 * (2 * b * n * 4 * h * (f + h)) - 2 * b * 4 * h * h
    assert counted == counter.get_total_flops() + lstm


def test_a_run_reports_its_speed(compose_train, tmp_path: Path) -> None:
    cfg = compose_train(
        ["experiment=st_policy", "trainer.max_steps=4", "callbacks.throughput.every_n_steps=2"]
    )
    summary = train(cfg)
    speed = summary["throughput"]
    assert speed["steps_per_s"] > 0 and 0 <= speed["data_wait_fraction"] <= 1
    assert speed["data_wait_fraction"] <= speed["between_steps_fraction"] + 1e-9
    assert set(speed["samples_per_s"]) == {"spatial", "temporal"}
    assert speed["samples_per_s"]["spatial"] == pytest.approx(
        speed["steps_per_s"] * cfg.data.batch_size
    )
    assert speed["mfu"] is None and speed["peak_memory_gb"] > 0 and speed["flops_per_step"] > 0
    assert speed["measured_steps"] == 2
    with open(Path(cfg.paths.output_dir) / "csv" / "metrics.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("throughput/steps_per_s")]
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert "steps/s; waiting for data" in end_report(summary, "summary.json")


def test_peak_rate_of_an_h200_is_its_dense_bf16_rate(monkeypatch) -> None:
    """An H200 SXM names itself "NVIDIA H200", which Lightning's table misses (it wants "sxm1")."""
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    cuda = torch.device("cuda", 0)
    assert throughput.peak_flops(cuda, torch.bfloat16) == pytest.approx(989.4e12)
    assert throughput.peak_flops(torch.device("cpu"), torch.bfloat16) is None
