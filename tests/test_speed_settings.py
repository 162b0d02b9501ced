"""Speed settings change how fast a step runs, not what it computes: the same per-step losses
on a CPU, checkpoints that load across settings with the plain keys."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from ssl_rl.run.training import build_data_and_model, train

# Float32 on a CPU: NHWC convolutions sum in another order than NCHW ones, so losses agree to
# rounding (a few ulp of the activations, compounded over 4 SGD steps), not bit for bit.
LOSS_TOLERANCE = 1e-4


def _losses(run_dir: Path) -> dict[int, float]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return {
            int(r["step"]): float(r["train/loss"])
            for r in csv.DictReader(handle)
            if r.get("train/loss")
        }


def _run(compose_train, tmp_path: Path, name: str, overrides: list[str]) -> Path:
    cfg = compose_train(
        ["experiment=st", "trainer.max_steps=4", *overrides], output_dir=tmp_path / name
    )
    assert train(cfg)["status"] == "completed"
    return tmp_path / name


@pytest.mark.parametrize(
    "lever",
    [["model.channels_last=true"], ["model.optimizer.fused=true"], ["trainer.benchmark=true"]],
    ids=["channels_last", "fused_sgd", "cudnn_benchmark"],
)
def test_each_setting_gives_the_same_losses_and_plain_checkpoints(
    compose_train, tmp_path: Path, lever: list[str]
) -> None:
    plain = _run(compose_train, tmp_path, "plain", ["model.channels_last=false"])
    fast = _run(compose_train, tmp_path, "fast", lever)
    expected, got = _losses(plain), _losses(fast)
    assert list(got) == list(expected) == [0, 1, 2, 3]
    for step, loss in expected.items():
        assert got[step] == pytest.approx(loss, abs=LOSS_TOLERANCE), step
    # The checkpoint of the fast run loads into a plain model (same keys and shapes).
    state = torch.load(fast / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    _, model = build_data_and_model(compose_train(["experiment=st", "model.channels_last=false"]))
    model.load_state_dict(state)


@pytest.mark.slow
def test_compiled_model_gives_the_same_losses_and_plain_keys(
    compose_train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Compiled dropout draws its masks from inductor's own generator (the same distribution,
    # other masks than eager's); with fallback_random it uses eager's, so the losses compare.
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, "fallback_random", True)
    plain = _run(compose_train, tmp_path, "plain", [])
    compiled = _run(compose_train, tmp_path, "compiled", ["model.compile_mode=default"])
    for step, loss in _losses(plain).items():
        assert _losses(compiled)[step] == pytest.approx(loss, abs=LOSS_TOLERANCE), step
    state = torch.load(compiled / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)
