"""Nothing in a checkpoint file runs; bad weight files are refused with the file and the fault."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from ssl_rl.checkpoints.export import export
from ssl_rl.checkpoints.loading import CheckpointMismatchError, load_checkpoint
from ssl_rl.eval.pretrained import load_pretrained_trunk
from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.report.runs import load_run
from ssl_rl.run.training import train
from tests.conftest import FINETUNE_TINY_OVERRIDES, trained_st_run

REPO = Path(__file__).resolve().parents[1]


class _Payload:
    """Unpickling this runs a shell command (what a malicious checkpoint would carry)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("st_run")


def _pretrained(compose_train, run_dir: Path) -> Path:
    return trained_st_run(compose_train, run_dir) / "checkpoints" / "last.ckpt"


def _with_payload(source: Path, path: Path, marker: Path) -> Path:
    checkpoint = torch.load(source, weights_only=True)
    checkpoint["extra"] = _Payload(marker)
    torch.save(checkpoint, path)
    return path


def _finetune_cli(tmp_path: Path, data_cache: Path, *overrides: str) -> tuple[int, str]:
    command = [
        sys.executable,
        "finetune.py",
        *FINETUNE_TINY_OVERRIDES,
        f"paths.data_cache={data_cache}",
        "eval=nn_demo",
        "eval.ks=[1,5]",
        f"hydra.run.dir={tmp_path / 'finetune'}",
        *overrides,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_a_payload_checkpoint_is_refused_and_nothing_runs(
    compose_train, run_dir: Path, tmp_path: Path, data_cache: Path
) -> None:
    marker = tmp_path / "payload_ran"
    path = _with_payload(_pretrained(compose_train, run_dir), tmp_path / "shared.ckpt", marker)
    code, output = _finetune_cli(tmp_path, data_cache, f"ckpt={path}")
    assert code != 0
    assert not marker.exists()
    assert "shared.ckpt: refused" in output and "posix.system" in output
    assert "trust_checkpoint=true" in output and "ssl_rl.checkpoints.export" in output
    assert "Traceback" not in output
    summary = json.loads((tmp_path / "finetune" / "summary.json").read_text())
    assert summary["status"] == "failed"


@pytest.mark.parametrize("key", ["init_from", "ckpt_path"])
def test_train_refuses_a_payload_before_it_runs(
    compose_train, run_dir: Path, tmp_path: Path, key: str
) -> None:
    marker = tmp_path / "payload_ran"
    path = _with_payload(_pretrained(compose_train, run_dir), tmp_path / "shared.ckpt", marker)
    cfg = compose_train(["experiment=st", f"{key}={path}"], output_dir=tmp_path / "run")
    with pytest.raises(CheckpointMismatchError, match=r"shared\.ckpt: refused.*posix\.system"):
        train(cfg)
    assert not marker.exists()


def test_trust_checkpoint_reads_ones_own_older_file(tmp_path: Path) -> None:
    # Hyperparameters as an OmegaConf node: what an older checkpoint could hold.
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": OmegaConf.create({"seed": 1})}, path)
    with pytest.raises(CheckpointMismatchError, match=r"old\.ckpt: refused: .*DictConfig"):
        load_checkpoint(path)
    assert load_checkpoint(path, trust=True)["hyper_parameters"].seed == 1


def test_export_and_report_refuse_a_payload_too(tmp_path: Path, caplog) -> None:
    marker = tmp_path / "payload_ran"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    summary = {"experiment": "st", "seed": 1, "status": "completed"}
    (run / "summary.json").write_text(json.dumps(summary))
    torch.save({"state_dict": {}, "x": _Payload(marker)}, run / "checkpoints" / "last.ckpt")
    assert load_run(run).policy == {}  # listed without its policy history, with a warning
    assert "last.ckpt: refused: it holds posix.system" in caplog.text
    with pytest.raises(CheckpointMismatchError, match="refused"):
        export(run, tmp_path / "out.safetensors")
    assert not marker.exists()


def _bad_file(kind: str, source: Path, tmp_path: Path) -> tuple[Path, list[str], str]:
    """A bad weights file, extra overrides, and what the message must say."""
    if kind == "truncated_ckpt":
        path = tmp_path / "cut.ckpt"
        data = source.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path, [], r"cut\.ckpt: a damaged or truncated PyTorch checkpoint"
    if kind == "foreign":
        path = tmp_path / "notes.ckpt"
        path.write_text("# My notes\nnot weights\n")
        return path, [], r"notes\.ckpt: neither a PyTorch checkpoint .* nor a safetensors file"
    exported = tmp_path / "trunk.safetensors"
    export(source, exported)
    if kind == "truncated_safetensors":
        data = exported.read_bytes()
        exported.write_bytes(data[: len(data) // 2])
        return exported, [], r"trunk\.safetensors: a damaged or truncated safetensors file"
    if kind == "architecture":
        return (
            exported,
            ["trunk.width=0.25"],
            (
                r"trunk\.safetensors: trunk\.width=0\.25 on the command line, but the checkpoint's "
                r"trunk has width=0\.125"
            ),
        )
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind", ["truncated_ckpt", "foreign", "truncated_safetensors", "architecture"]
)
def test_bad_weight_files_are_refused_without_a_traceback(
    kind: str, compose_train, run_dir: Path, tmp_path: Path, data_cache: Path
) -> None:
    path, overrides, message = _bad_file(kind, _pretrained(compose_train, run_dir), tmp_path)
    code, output = _finetune_cli(tmp_path, data_cache, f"ckpt={path}", *overrides)
    assert code != 0
    assert re.search(message, output), output[-2000:]
    assert "Traceback" not in output


@pytest.mark.parametrize("text", ["# notes\n", "notes\n", "{}", ""])
def test_a_file_of_another_kind_is_named_as_such(tmp_path: Path, text: str) -> None:
    path = tmp_path / "notes.ckpt"
    path.write_text(text)
    with pytest.raises(CheckpointMismatchError, match=r"notes\.ckpt: neither a PyTorch checkpoint"):
        load_pretrained_trunk(CaffeNetTrunk(width=0.125), path)


def _exported_with(tmp_path: Path, change: str) -> Path:
    trunk = CaffeNetTrunk(width=0.125)
    state = dict(trunk.state_dict())
    if change == "missing":
        state.pop("conv5.bn.running_var")
    else:
        state["conv3.conv.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / f"{change}.safetensors"
    architecture = {"width": 0.125, "groups": 1, "conv1_stride": 2, "in_channels": 3}
    metadata = {"format": "ssl_rl.trunk/1", "architecture": json.dumps(architecture)}
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", r"missing keys: conv5\.bn\.running_var"),
        ("misshaped", r"shape mismatches: conv3\.conv\.weight: checkpoint \(3, 3, 3, 3\)"),
    ],
)
def test_missing_or_misshaped_keys_are_named(tmp_path: Path, change: str, message: str) -> None:
    path = _exported_with(tmp_path, change)
    with pytest.raises(CheckpointMismatchError, match=message) as error:
        load_pretrained_trunk(CaffeNetTrunk(width=0.125), path)
    assert path.name in str(error.value)


def test_a_safetensors_file_of_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointMismatchError, match=r"other\.safetensors: .*not a trunk"):
        load_pretrained_trunk(CaffeNetTrunk(width=0.125), path)
