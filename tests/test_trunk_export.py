"""``python -m ssl_rl.checkpoints.export``: a shareable .safetensors trunk, evaluating like its
checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import ssl_rl
from ssl_rl.checkpoints.loading import CheckpointMismatchError
from ssl_rl.checkpoints.trunk_file import psi_sha256
from ssl_rl.nets import CaffeNetTrunk
from ssl_rl.run.finetuning import finetune
from ssl_rl.run.init_from import load_initial_weights
from ssl_rl.run.training import build_data_and_model, train
from tests.conftest import trained_st_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("st_run")


def _pretrained(compose_train, run_dir: Path) -> Path:
    return trained_st_run(compose_train, run_dir)


def _export(source: Path, out: Path, *flags: str) -> None:
    module = "ssl_rl.checkpoints.export"
    command = [sys.executable, "-m", module, str(source), "--out", str(out), *flags]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=120)


def test_export_writes_the_trunk_and_says_what_it_is(compose_train, run_dir, tmp_path) -> None:
    run = _pretrained(compose_train, run_dir)
    out = tmp_path / "trunk.safetensors"
    _export(run, out)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    with safe_open(str(out), framework="pt") as handle:
        metadata = handle.metadata()
    assert json.loads(metadata["architecture"]) == {
        "width": 0.125,
        "in_channels": 3,
        "groups": 1,
        "conv1_stride": 2,
        "batch_norm": True,
    }
    assert metadata["experiment"] == "st"
    assert json.loads(metadata["tasks"]) == ["spatial", "temporal"]
    assert metadata["steps"] == "3"
    assert metadata["ssl_rl_version"] == ssl_rl.__version__
    psi = json.loads(metadata["psi_sha256"])
    assert psi["spatial"] == psi_sha256(checkpoint["state_dict"]["permutations.spatial.perms"])
    assert set(psi) == {"spatial", "temporal"}

    # Plain PyTorch, as docs/evaluation.md shows: the trunk-only file is the trunk's state_dict.
    trunk = CaffeNetTrunk(width=0.125, conv1_stride=4)
    trunk.load_state_dict(load_file(out))
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, checkpoint["state_dict"][f"trunk.{key}"])


def test_finetune_gives_the_same_numbers_from_the_export(
    compose_train, compose_finetune, run_dir, tmp_path
) -> None:
    run = _pretrained(compose_train, run_dir)
    out = tmp_path / "trunk.safetensors"
    _export(run, out)
    common = ["eval=nn_demo", "eval.ks=[1,5]"]
    from_ckpt = finetune(compose_finetune([*common, f"ckpt={run}"], tmp_path / "a"))
    from_file = finetune(compose_finetune([*common, f"ckpt={out}"], tmp_path / "b"))
    assert from_file["status"] == "completed"
    assert from_file["metrics"] == from_ckpt["metrics"]
    assert from_file["trunk"] == from_ckpt["trunk"] == {"width": 0.125, "groups": 1}
    assert from_file["pretrained_steps"] == 3


@pytest.mark.parametrize("flags", [[], ["--heads", "--psi"]])
def test_init_from_an_export(compose_train, run_dir, tmp_path, flags: list[str]) -> None:
    run = _pretrained(compose_train, run_dir)
    out = tmp_path / "trunk.safetensors"
    _export(run, out, *flags)
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    _, model = build_data_and_model(compose_train(["experiment=st"]))
    fresh_head = model.state_dict()["heads.spatial.fc6.weight"].clone()
    load_initial_weights(model, out)
    state = model.state_dict()
    for key, value in saved.items():
        if key.startswith("trunk.") or flags:
            assert torch.equal(state[key], value), key
    if not flags:  # the heads start fresh
        assert torch.equal(state["heads.spatial.fc6.weight"], fresh_head)


def test_init_from_an_export_of_another_width_is_refused(compose_train, run_dir, tmp_path):
    out = tmp_path / "trunk.safetensors"
    _export(_pretrained(compose_train, run_dir), out)
    _, model = build_data_and_model(compose_train(["experiment=st", "model.trunk.width=0.25"]))
    with pytest.raises(CheckpointMismatchError, match=r"trunk\.safetensors: .*width=0\.125 in"):
        load_initial_weights(model, out)


def test_an_export_cannot_be_resumed(compose_train, run_dir, tmp_path) -> None:
    out = tmp_path / "trunk.safetensors"
    _export(_pretrained(compose_train, run_dir), out)
    cfg = compose_train(["experiment=st", f"ckpt_path={out}"], output_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="init_from= instead"):
        train(cfg)
