"""``make policy-analysis``'s report: arms from one checkpoint, numbers, figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssl_rl.report.policy_analysis import make_analysis
from ssl_rl.run.training import train

ARMS = {
    "pa_policy": [["seed=1"], ["seed=2"]],
    "pa_uniform": [["seed=1", "policy=monitor"]],
}


@pytest.fixture(scope="module")
def analysis_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("policy_analysis")


def test_analysis_report_of_a_tiny_sweep(compose_train, analysis_sweep: Path) -> None:
    base = analysis_sweep / "base"
    train(compose_train(["experiment=s", "trainer.max_steps=2"], output_dir=base))
    for arm, runs in ARMS.items():
        for overrides in runs:
            cfg = compose_train(
                [
                    "experiment=policy_analysis",
                    f"init_from={base}",
                    f"name={arm}",
                    "trainer.max_steps=8",
                    "policy_timing.interval=0",
                    "policy_timing.episode_steps=2",
                    "policy.noise_shuffles=9",
                    *overrides,
                ],
                output_dir=analysis_sweep / "runs" / f"{arm}_{overrides[0]}",
            )
            assert train(cfg)["status"] == "completed"

    out = analysis_sweep / "report"
    result = make_analysis([analysis_sweep / "runs"], out)
    arms = {row["arm"]: row for row in result["arms"]}
    assert set(arms) == set(ARMS)
    policy, uniform = arms["pa_policy"], arms["pa_uniform"]
    assert policy["seeds"] == [1, 2] and policy["episodes"] == 3
    assert len(policy["p_values"]) == 2 and 0 < policy["p_combined"] <= 1
    assert "p_values" not in uniform  # no policy, nothing to test
    for row in arms.values():
        share, _ = row["hard_quartile_share_all"]
        assert 0.0 <= share <= 1.0
        assert 0.0 <= row["error_last"][0] <= 1.0
    for name in ("policy_analysis.png", "fig4_pa_policy_seed1.png", "policy_analysis.md"):
        assert (out / name).stat().st_size > 500, name
    assert json.loads((out / "policy_analysis.json").read_text())["arms"] == result["arms"]
    assert "| pa_uniform | 1 | 3 |" in (out / "policy_analysis.md").read_text()


def test_analysis_without_runs_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no completed run"):
        make_analysis([tmp_path / "empty"], tmp_path / "out")
