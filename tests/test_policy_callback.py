"""The policy callback: episodes, rewards, figures, checkpoints that resume exactly."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssl_rl.training import train

REPO = Path(__file__).resolve().parents[1]


def _policy_state(run_dir: Path) -> dict:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    (state,) = [v for k, v in checkpoint["callbacks"].items() if "PermutationPolicy" in k]
    return state["tasks"]


def test_st_policy_runs_episodes_and_logs_them(compose_train) -> None:
    cfg = compose_train(["experiment=st_policy", "trainer.max_steps=7"])
    summary = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert summary["status"] == "completed"

    tasks = _policy_state(run_dir)
    for task in ("spatial", "temporal"):
        history = tasks[task]["history"]
        assert tasks[task]["episodes"] == 2  # episodes at steps 2 and 5, closed at 3 and 6
        assert len(history["rewards"]) == 2
        fractions = torch.tensor(history["group_fractions"])
        assert fractions.shape == (2, 10)
        assert torch.allclose(fractions.sum(1), torch.ones(2))
        assert len(history["permutation_errors"][0]) == 12
        for name in ("permutation_error", "group_choices", "group_probs"):
            assert (run_dir / "policy" / f"{task}_{name}.png").is_file()

    with open(run_dir / "csv" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    rewards = [r for r in rows if r.get("policy/spatial/reward")]
    assert len(rewards) == 2
    assert all(r.get("policy/spatial/entropy") for r in rewards)


@pytest.mark.parametrize("experiment", ["st_errprop", "st_policy"])
def test_policy_samplers_replace_uniform_sampling(experiment: str, compose_train) -> None:
    cfg = compose_train([f"experiment={experiment}", "trainer.max_steps=3"])
    train(cfg)
    tasks = _policy_state(Path(cfg.paths.output_dir))
    sampler = tasks["spatial"]["sampler"]
    if experiment == "st_policy":
        assert sampler["labels"] is not None and sampler["probs"] is not None
    else:
        assert sampler["probs"] is not None


def test_resume_continues_the_policy_exactly(compose_train, tmp_path: Path) -> None:
    """2k steps straight == k steps, resume, k steps: same policy and trunk parameters."""
    common = ["experiment=st_policy", "callbacks.model_checkpoint.every_n_train_steps=4"]
    straight = compose_train([*common, "trainer.max_steps=8"], output_dir=tmp_path / "straight")
    train(straight)
    first = compose_train([*common, "trainer.max_steps=4"], output_dir=tmp_path / "first")
    train(first)
    resumed = compose_train(
        [*common, "trainer.max_steps=8", f"ckpt_path={tmp_path / 'first'}"],
        output_dir=tmp_path / "resumed",
    )
    train(resumed)

    a, b = _policy_state(tmp_path / "straight"), _policy_state(tmp_path / "resumed")
    for task in ("spatial", "temporal"):
        policy_a, policy_b = a[task]["learner"]["policy"], b[task]["learner"]["policy"]
        for name in policy_a:
            torch.testing.assert_close(policy_a[name], policy_b[name], rtol=0, atol=1e-6)
        assert a[task]["history"]["rewards"] == pytest.approx(b[task]["history"]["rewards"])
        assert a[task]["episodes"] == b[task]["episodes"] == 2
    weights_a = torch.load(tmp_path / "straight/checkpoints/last.ckpt", weights_only=False)
    weights_b = torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=False)
    assert weights_a["global_step"] == weights_b["global_step"] == 8
    for name, tensor in weights_a["state_dict"].items():
        torch.testing.assert_close(tensor, weights_b["state_dict"][name], msg=name)


def test_ddp_ranks_share_one_policy(data_cache: Path, tmp_path: Path) -> None:
    """Two CPU processes (gloo): both ranks sample from the same π and the same groups."""
    from tests.conftest import TINY_OVERRIDES

    overrides = [o for o in TINY_OVERRIDES if not o.startswith("trainer.devices")]
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "experiment=st_policy",
        *overrides,
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.max_steps=7",
        f"paths.data_cache={data_cache}",
        f"hydra.run.dir={tmp_path / 'ddp'}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    output = result.stdout + result.stderr
    assert "distributed_backend=gloo" in output and "MEMBER: 2/2" in output
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["status"] == "completed"
    tasks = _policy_state(tmp_path / "ddp")
    assert tasks["spatial"]["episodes"] == 2
    # Each update checks that all ranks hold identical groups and policy (see the callback).
    assert "policy differs across ranks" not in result.stderr


def test_monitor_mode_measures_without_changing_sampling(compose_train) -> None:
    cfg = compose_train(["experiment=st", "policy=monitor", "trainer.max_steps=4"])
    train(cfg)
    tasks = _policy_state(Path(cfg.paths.output_dir))
    for task in ("spatial", "temporal"):
        assert tasks[task]["learner"] is None
        assert tasks[task]["episodes"] == 0
        assert tasks[task]["history"]["validation_steps"] == [0, 2, 3]  # cycle of 3 steps
        assert "labels" not in tasks[task]["sampler"]  # still the uniform sampler
