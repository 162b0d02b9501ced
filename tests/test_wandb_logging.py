"""A policy run logged to W&B offline: grouped by experiment, tagged, figures as images, CSV too."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssl_rl.run.training import train
from tests.fixtures.offline_wandb import use_offline_wandb


def test_st_policy_run_logs_to_wandb_offline(
    compose_train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    use_offline_wandb(monkeypatch, tmp_path)
    run_dir = tmp_path / "run"
    cfg = compose_train(
        [
            "experiment=st_policy",
            "logger=wandb",
            "policy.figure_every=1",
            "seed=3",
            "trainer.max_steps=7",
        ],
        output_dir=run_dir,
    )
    assert cfg.logger.wandb.group == "st_policy"
    assert list(cfg.logger.wandb.tags) == ["S", "T", "P"]
    assert cfg.logger.wandb.name == "st_policy_seed3"
    summary = train(cfg)
    assert summary["status"] == "completed"
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    images = {p.name for p in (offline / "files" / "media" / "images").rglob("*.png")}
    assert any("group_choices" in name for name in images), images
    assert any("permutation_error" in name for name in images), images
    assert (run_dir / "csv" / "metrics.csv").is_file()  # offline W&B runs also write CSV
