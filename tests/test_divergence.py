"""Divergence: a non-finite loss or policy state stops the run there; summaries are strict JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from ssl_rl.module import OrderingPretrainer
from ssl_rl.run.summary import write_summary
from ssl_rl.run.training import train


def _strict(path: Path) -> dict[str, Any]:
    def refuse(name: str) -> None:
        raise ValueError(f"{path} holds {name}, which strict JSON parsers reject")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_nan_loss_at_step_k_stops_there_and_keeps_the_last_checkpoint(
    compose_train, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = 3
    original = OrderingPretrainer._task_loss

    def nan_at_k(self: OrderingPretrainer, *args: Any, **kwargs: Any) -> Any:
        loss, accuracy = original(self, *args, **kwargs)
        if self.training and self.trainer.global_step == k:
            loss = loss * float("nan")
        return loss, accuracy

    monkeypatch.setattr(OrderingPretrainer, "_task_loss", nan_at_k)
    cfg = compose_train(["experiment=s", "trainer.max_steps=6"])
    run_dir = Path(cfg.paths.output_dir)
    summary = train(cfg, reraise=False)

    assert summary["status"] == "diverged"
    assert summary["diverged_step"] == k and summary["diverged_task"] == "spatial"
    assert "step 3" in summary["error"] and "model.optimizer.lr" in summary["error"]
    recorded = _strict(run_dir / "summary.json")
    assert recorded["status"] == "diverged" and recorded["diverged_step"] == k
    # Checkpoints every 2 steps: the one of step 2 is the last, as it was written, all finite.
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 2
    assert recorded["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "last.ckpt",
        "step0000002.ckpt",
    ]


def test_non_finite_policy_state_stops_the_run(
    compose_train, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nan_ratios(self: OrderingPretrainer, task: str, parts: Any, chunk_size: Any = None) -> Any:
        return torch.full((self.permutations[task].num_classes, parts.shape[0]), float("nan"))

    monkeypatch.setattr(OrderingPretrainer, "validation_ratios", nan_ratios)
    cfg = compose_train(["experiment=s_policy", "trainer.max_steps=4"])
    summary = train(cfg, reraise=False)
    assert summary["status"] == "diverged"
    assert summary["diverged_step"] == 0  # the first validation of the policy
    assert "policy state" in summary["error"]


def test_diverged_run_raises_when_asked(compose_train, monkeypatch: pytest.MonkeyPatch) -> None:
    from ssl_rl.run.errors import RunDiverged

    monkeypatch.setattr(
        OrderingPretrainer,
        "_task_loss",
        lambda self, *a, **k: (torch.tensor(float("inf"), requires_grad=True), torch.tensor(0.0)),
    )
    with pytest.raises(RunDiverged, match="diverged at step 0"):
        train(compose_train(["experiment=s"]))


def test_summary_is_strict_json(tmp_path: Path) -> None:
    path = write_summary(
        tmp_path / "summary.json",
        {"a": float("nan"), "b": [math.inf, 1.5], "c": {"d": -math.inf}, "t": torch.tensor(2.0)},
    )
    assert _strict(path) == {"a": None, "b": [None, 1.5], "c": {"d": None}, "t": 2.0}


def test_a_check_kept_on_the_device_names_the_first_bad_step_and_saves_nothing_after_it(
    compose_train, monkeypatch: pytest.MonkeyPatch
) -> None:
    """divergence_check_every_n_steps > 1 (paper scale): no host read per step; the NaN of step
    3 is found at the next checkpoint (step 4), which is not written."""
    k = 3
    original = OrderingPretrainer._task_loss

    def nan_at_k(self: OrderingPretrainer, task: str, *args: Any, **kwargs: Any) -> Any:
        loss, accuracy = original(self, task, *args, **kwargs)
        if self.training and self.trainer.global_step == k and task == "temporal":
            loss = loss * float("nan")
        return loss, accuracy

    monkeypatch.setattr(OrderingPretrainer, "_task_loss", nan_at_k)
    cfg = compose_train(
        ["experiment=st", "trainer.max_steps=8", "divergence_check_every_n_steps=6"]
    )
    run_dir = Path(cfg.paths.output_dir)
    summary = train(cfg, reraise=False)
    assert summary["status"] == "diverged"
    assert summary["diverged_step"] == k and summary["diverged_task"] == "temporal"
    assert "step 3: the temporal loss is nan" in summary["error"]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "last.ckpt",
        "step0000002.ckpt",
    ]
