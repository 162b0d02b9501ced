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

from ssl_rl.run.training import train

REPO = Path(__file__).resolve().parents[2]


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


@pytest.mark.parametrize("check_every", [1, 3], ids=["loss-read-per-step", "check-on-device"])
def test_ddp_ranks_share_one_policy(data_cache: Path, tmp_path: Path, check_every: int) -> None:
    """Two CPU processes (gloo): both ranks sample from the same π and the same groups; the
    divergence check kept on the device agrees across ranks without waiting in a collective
    that rank 0's NN retrieval alone would enter."""
    from tests.conftest import tiny_train_overrides

    tiny = tiny_train_overrides(["experiment=st_policy"])
    overrides = [o for o in tiny if not o.startswith("trainer.devices")]
    command = [
        sys.executable,
        str(REPO / "train.py"),
        *overrides,
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.max_steps=7",
        f"divergence_check_every_n_steps={check_every}",
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
        assert tasks[task]["history"]["validation_steps"] == [0, 2, 3]  # cycle of 3 steps
        assert "labels" not in tasks[task]["sampler"]  # still the uniform sampler
        # The same episodes as with the policy, measured: what uniform sampling drew, by
        # error quartile, and the reward it would have earned.
        history = tasks[task]["history"]
        assert tasks[task]["episodes"] == 1
        assert len(history["rewards"]) == len(history["quantile_fractions"]) == 1
        assert sum(history["quantile_fractions"][0]) == pytest.approx(1.0)
        assert history["action_counts"] == []


def _rewards_by_hand(history: dict, ratio_of: dict[int, float]) -> list[float]:
    """Eq. 7 from the recorded validations: r = E_t + (E_t − E_{t−1}) · ratio − E_{t+1}."""
    errors = dict(zip(history["validation_steps"], history["errors"], strict=True))
    steps = history["validation_steps"]
    rewards = []
    for (e_t, e_next), closed in zip(
        history["episode_errors"], history["episode_steps"], strict=True
    ):
        start = max(s for s in steps if s < closed and errors[s] == e_t)
        before = [s for s in steps if s < start]
        trend = 0.0 if not before else (e_t - errors[before[-1]]) * ratio_of[start - before[-1]]
        rewards.append(e_t + trend - e_next)
    return rewards


@pytest.mark.parametrize(
    ("baseline", "interval", "expected_validations"),
    [
        ("paper", 2, [0, 2, 3, 5, 6, 8]),
        ("scaled", 2, [0, 2, 3, 5, 6, 8]),
        ("paper", 0, [0, 2, 4, 6, 8]),  # back to back: each validation closes and opens
    ],
)
def test_reward_baselines_follow_eq_7(
    baseline: str, interval: int, expected_validations: list[int], compose_train
) -> None:
    cfg = compose_train(
        [
            "experiment=s_policy",
            "trainer.max_steps=9",
            f"policy.reward_baseline={baseline}",
            f"policy_timing.interval={interval}",
            f"policy_timing.episode_steps={1 if interval else 2}",
        ]
    )
    train(cfg)
    history = _policy_state(Path(cfg.paths.output_dir))["spatial"]["history"]
    assert history["validation_steps"] == expected_validations
    episode = 1 if interval else 2
    # paper: 2 E_t − E_{t−1} whatever the spans; scaled: the trend × episode / span.
    ratios = {span: 1.0 if baseline == "paper" else episode / span for span in (1, 2, 3)}
    assert history["rewards"] == pytest.approx(_rewards_by_hand(history, ratios))
    assert len(history["rewards"]) == len(history["action_counts"]) > 1


def test_discounted_returns_over_a_horizon_in_a_run(compose_train) -> None:
    """horizon 1: the update of episode t uses G_t = r_t + γ r_{t+1} (horizon 0: G_t = r_t)."""
    cfg = compose_train(
        [
            "experiment=s_policy",
            "trainer.max_steps=10",
            "policy_timing.interval=0",
            "policy_timing.episode_steps=2",
            "policy.learner.horizon=1",
            "policy.learner.gamma=0.5",
        ]
    )
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    rewards = _policy_state(run_dir)["spatial"]["history"]["rewards"]
    with open(run_dir / "csv" / "metrics.csv") as handle:
        returns = [float(r["policy/spatial/return"]) for r in csv.DictReader(handle)
                   if r.get("policy/spatial/return")]  # fmt: skip
    assert len(rewards) == 4 and len(returns) == 3  # the last episode waits for r_{t+1}
    expected = [rewards[t] + 0.5 * rewards[t + 1] for t in range(3)]
    assert returns == pytest.approx(expected, abs=1e-6)


def test_summary_records_the_noise_test_and_figures_show_it(compose_train) -> None:
    cfg = compose_train(
        [
            "experiment=s_policy",
            "trainer.max_steps=9",
            "policy_timing.interval=0",
            "policy_timing.episode_steps=2",
            "policy.noise_shuffles=9",
        ]
    )
    summary = train(cfg)
    entry = summary["policy"]["spatial"]
    assert entry["episodes"] == 4 and entry["mode"] == "rl"
    assert 0.1 <= entry["p_value_vs_noise"] <= 1.0  # (1 + k) / 10
    written = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert written["policy"]["spatial"]["p_value_vs_noise"] == entry["p_value_vs_noise"]
    state = _policy_state(Path(cfg.paths.output_dir))["spatial"]
    assert state["noise_test"]["shuffles"] == 9
    assert len(state["noise_test"]["band_low"]) == 4
    history = state["history"]
    # One π per episode (the one that acted), not one per validation.
    assert len(history["group_probs"]) == len(history["hard_mass"]) == 5  # the 5th still open
    assert len(history["group_fractions"]) == 4


def test_init_from_copies_weights_only(compose_train, tmp_path: Path) -> None:
    source = compose_train(["experiment=s", "trainer.max_steps=2"], output_dir=tmp_path / "src")
    train(source)
    cfg = compose_train(
        ["experiment=policy_analysis", f"init_from={tmp_path / 'src'}", "trainer.max_steps=0"],
        output_dir=tmp_path / "init",
    )
    summary = train(cfg)
    assert summary["status"] == "completed", summary.get("traceback")
    assert summary["init_from"].endswith("last.ckpt")
    a = torch.load(tmp_path / "src/checkpoints/last.ckpt", weights_only=False)
    b = torch.load(tmp_path / "init/checkpoints/last.ckpt", weights_only=False)
    assert b["global_step"] == 0
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(tensor, b["state_dict"][name], msg=name)

    both = compose_train([f"init_from={tmp_path / 'src'}", f"ckpt_path={tmp_path / 'src'}"])
    with pytest.raises(ValueError, match="set one of them"):
        train(both)
    wrong = compose_train(
        ["experiment=policy_analysis", f"init_from={tmp_path / 'src'}", "model.trunk.width=0.25"]
    )
    with pytest.raises(RuntimeError, match="shape mismatches"):
        train(wrong)
    missing = compose_train([f"init_from={tmp_path / 'nowhere'}"])
    with pytest.raises(FileNotFoundError, match="init_from"):
        train(missing)


def test_policy_credit_runs_in_training_and_records_its_noise_test(compose_train) -> None:
    """policy=credit: the paper's one action per sample, episodes, figures and a p-value."""
    cfg = compose_train(
        [
            "experiment=s_policy",
            "policy=credit",
            "trainer.max_steps=9",
            "policy_timing.interval=0",
            "policy_timing.episode_steps=2",
            "policy.noise_shuffles=9",
        ]
    )
    assert cfg.policy.samples_per_action == 1 and cfg.policy.credit.temperature > 0
    summary = train(cfg)
    entry = summary["policy"]["spatial"]
    assert entry["mode"] == "credit" and entry["episodes"] == 4
    assert 0.1 <= entry["p_value_vs_noise"] <= 1.0  # (1 + k) / 10
    state = _policy_state(Path(cfg.paths.output_dir))["spatial"]
    assert len(state["credit"]["records"]) == 4
    assert len(state["history"]["action_counts"]) == 4
    assert len(state["history"]["group_probs"]) == 5  # the fifth episode is still open
    assert (Path(cfg.paths.output_dir) / "policy" / "spatial_group_choices.png").is_file()
