"""S&T phases start their own training: fresh optimiser state and lr schedule; resume exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf, open_dict
from torch.optim import lr_scheduler

from ssl_rl.phase_reset import FreshOptimization
from ssl_rl.run.training import train
from ssl_rl.schedule import TaskSchedule
from tests.conftest import CONF_DIR

# 8 steps, temporal phase from step 4; StepLR decays every 3 steps, so the spatial phase ends
# at lr / 10 and a phase that starts afresh is back at lr.
S_THEN_T = [
    "experiment=s_then_t",
    "trainer.max_steps=8",
    "model.scheduler.step_size=3",
    "tasks.temporal.lr_scale=10",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    "~callbacks.nn_retrieval",
]


class OptimizerProbe(pl.Callback):
    """Records, just before each optimiser step, the lr per group and how many params have state."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: Any, optimizer: Any) -> None:
        (raw,) = trainer.optimizers
        lrs = {group["name"]: group["lr"] for group in raw.param_groups}
        self.records.append({"step": trainer.global_step, "lr": lrs, "state": len(raw.state)})

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.path.write_text(json.dumps(self.records))


def _run(compose_train: Callable, overrides: list[str], out: Path) -> list[dict[str, Any]]:
    cfg = compose_train([*S_THEN_T, *overrides], output_dir=out)
    with open_dict(cfg):
        probe = {"_target_": f"{__name__}.OptimizerProbe", "path": str(out / "probe.json")}
        cfg.callbacks.probe = probe
    assert train(cfg)["status"] == "completed"
    return json.loads((out / "probe.json").read_text())


def _lr(records: list[dict[str, Any]], group: str) -> list[float]:
    return [record["lr"][group] for record in records]


def test_schedule_resets_only_at_the_phase_starts_of_a_sequential_run() -> None:
    sequential = TaskSchedule.build(["spatial", "temporal"], "sequential", [0.5], max_steps=10)
    assert [s for s in range(12) if sequential.resets_optimizer_at(s)] == [5]
    kept = TaskSchedule.build(["spatial", "temporal"], "sequential", [0.5], 10, False)
    assert not any(kept.resets_optimizer_at(s) for s in range(12))
    parallel = TaskSchedule.build(["spatial", "temporal"], "parallel", [], max_steps=10)
    assert not any(parallel.resets_optimizer_at(s) for s in range(12))
    for task_file in sorted((CONF_DIR / "schedule").glob("*.yaml")):
        assert OmegaConf.load(task_file).reset_optimizer_per_phase is True, task_file.name


def _warmup_then_cosine(optimizer: torch.optim.Optimizer) -> Any:
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=2)
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    return lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[2])


SCHEDULERS: dict[str, Callable[[torch.optim.Optimizer], Any]] = {
    "step": lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    "multistep": lambda o: lr_scheduler.MultiStepLR(o, milestones=[1, 3], gamma=0.1),
    "warmup_cosine": _warmup_then_cosine,
    "one_cycle": lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1, 1.0], total_steps=20),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_fresh_optimization_restarts_optimiser_and_schedule(name: str) -> None:
    torch.manual_seed(0)
    trunk, head = torch.nn.Linear(3, 3), torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(
        [{"params": trunk.parameters()}, {"params": head.parameters(), "lr": 0.1}],
        lr=0.01,
        momentum=0.9,
    )
    scheduler = SCHEDULERS[name](optimizer)
    fresh = FreshOptimization.capture([optimizer], [scheduler])

    def phase() -> list[list[float]]:
        rates = []
        for _ in range(5):
            rates.append([g["lr"] for g in optimizer.param_groups])
            head(trunk(torch.randn(4, 3))).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
        return rates

    first = phase()
    assert len(optimizer.state) == 4 and len(set(map(tuple, first))) > 1
    for _ in range(2):  # any number of phases
        fresh.restore([optimizer], [scheduler])
        assert len(optimizer.state) == 0
        assert phase() == first


def test_s_then_t_temporal_phase_starts_afresh(compose_train, tmp_path: Path) -> None:
    records = _run(compose_train, [], tmp_path / "reset")
    assert [r["step"] for r in records] == list(range(8))
    # Each phase: lr for 3 steps, then lr / 10; the temporal head keeps its 10x scale.
    assert _lr(records, "trunk") == pytest.approx([0.01, 0.01, 0.01, 0.001] * 2)
    assert _lr(records, "head_temporal") == pytest.approx([0.1, 0.1, 0.1, 0.01] * 2)
    states = [r["state"] for r in records]
    assert states[4] == 0  # momentum buffers cleared at the switch
    assert states[3] > 0 and states[5] > 0


def test_s_then_t_without_reset_keeps_one_optimiser_run(compose_train, tmp_path: Path) -> None:
    records = _run(compose_train, ["schedule.reset_optimizer_per_phase=false"], tmp_path / "kept")
    decays = [0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.0001, 0.0001]
    assert _lr(records, "trunk") == pytest.approx(decays)
    assert _lr(records, "head_temporal") == pytest.approx([10 * lr for lr in decays])
    assert all(r["state"] > 0 for r in records[1:])


@pytest.mark.parametrize("resume_step", [4, 6])
def test_resume_at_or_after_the_switch_is_exact(
    resume_step: int, compose_train, tmp_path: Path
) -> None:
    """8 steps straight == resume from the step-4 (switch) or step-6 checkpoint, then go on."""
    straight = _run(compose_train, [], tmp_path / "straight")
    checkpoint = tmp_path / "straight" / "checkpoints" / f"step{resume_step:07d}.ckpt"
    resumed = _run(compose_train, [f"ckpt_path={checkpoint}"], tmp_path / "resumed")
    assert resumed == straight[resume_step:]

    a = torch.load(tmp_path / "straight/checkpoints/last.ckpt", weights_only=False)
    b = torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=False)
    assert a["global_step"] == b["global_step"] == 8
    assert a["lr_schedulers"] == b["lr_schedulers"]
    (optimizer_a,), (optimizer_b,) = a["optimizer_states"], b["optimizer_states"]
    assert optimizer_a["param_groups"] == optimizer_b["param_groups"]
    torch.testing.assert_close(optimizer_a["state"], optimizer_b["state"])
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(tensor, b["state_dict"][name], msg=name)
