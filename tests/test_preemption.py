"""A real ``train.py`` stopped by SIGTERM checkpoints at the step boundary and resumes in place
to the same weights, policy and summary as an uninterrupted run, in one continuous CSV."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ssl_rl.run.errors import ConfigRefused
from ssl_rl.run.resume import CONF_DIR, resume_arguments
from tests.train_process import MAX_STEPS, REPO, process_env, run_ok, train_command


def _policy_and_weights(run_dir: Path) -> tuple[dict, dict]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    (policy,) = [v for k, v in checkpoint["callbacks"].items() if "PermutationPolicy" in k]
    return policy["tasks"]["spatial"], checkpoint["state_dict"]


def test_sigterm_checkpoints_and_resume_finishes_like_an_uninterrupted_run(
    data_cache: Path, tmp_path: Path
) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    run_ok(train_command(data_cache, straight), tmp_path)

    # SIGTERM to the whole process group (what `timeout` and Ctrl-C do) once a step is saved.
    process = subprocess.Popen(
        train_command(data_cache, stopped),
        cwd=tmp_path,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    while not (stopped / "checkpoints" / "step0000004.ckpt").exists():
        assert process.poll() is None, process.communicate()[0][-3000:]
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 128 + signal.SIGTERM, output[-3000:]
    summary = json.loads((stopped / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM", summary
    step = torch.load(stopped / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert 4 <= step < MAX_STEPS and summary["steps"] == step
    assert "killed by signal" not in output

    run_ok([sys.executable, str(REPO / "train.py"), f"resume={stopped}"], tmp_path)

    resumed = json.loads((stopped / "summary.json").read_text())
    reference = json.loads((straight / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["resumed_from"]["step"] == step
    for key in ("steps", "metrics", "policy", "chance"):
        assert resumed[key] == reference[key], key
    policy_a, weights_a = _policy_and_weights(straight)
    policy_b, weights_b = _policy_and_weights(stopped)
    for name, tensor in weights_a.items():
        torch.testing.assert_close(weights_b[name], tensor, rtol=0, atol=0, msg=name)
    for name, tensor in policy_a["learner"]["policy"].items():
        torch.testing.assert_close(policy_b["learner"]["policy"][name], tensor, rtol=0, atol=0)
    assert policy_b["history"]["rewards"] == policy_a["history"]["rewards"]

    with open(stopped / "csv" / "metrics.csv") as handle:
        steps = [int(r["step"]) for r in csv.DictReader(handle) if r.get("train/loss")]
    assert steps == list(range(MAX_STEPS))  # one CSV, every step once, in order


def test_resume_refuses_changes_to_the_model_or_data(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        saved = compose(config_name="train", overrides=["experiment=s", "trainer.max_steps=30"])
    OmegaConf.save(saved, run_dir / ".hydra" / "config.yaml")
    OmegaConf.save(
        OmegaConf.create(["experiment=s", "trainer.max_steps=30"]),
        run_dir / ".hydra" / "overrides.yaml",
    )

    args = resume_arguments([f"resume={run_dir}", "trainer.max_steps=60", "logger=tensorboard"])
    assert args[-2:] == [f"hydra.run.dir={run_dir}", f"resume={run_dir}"]
    assert "experiment=s" in args and "trainer.max_steps=60" in args
    with pytest.raises(ConfigRefused) as refused:
        resume_arguments([f"resume={run_dir}", "experiment=st", "model.optimizer.lr=0.5"])
    message = str(refused.value)
    assert "model.optimizer.lr" in message and "tasks.temporal" in message
    with pytest.raises(ConfigRefused, match="may only extend"):
        resume_arguments([f"resume={run_dir}", "trainer.max_steps=10"])

    # A run resumed before (its overrides hold resume=, maybe ckpt_path=) resumes again.
    earlier = ["experiment=s", "trainer.max_steps=30", f"resume={run_dir}", "ckpt_path=/x"]
    OmegaConf.save(OmegaConf.create(earlier), run_dir / ".hydra" / "overrides.yaml")
    args = resume_arguments([f"resume={run_dir}"])
    assert [a for a in args if a.startswith(("resume=", "ckpt_path="))] == [f"resume={run_dir}"]
