"""finetune.py: every task config runs on the tiny demo data; checkpoints load strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ssl_rl.eval.pretrained import CheckpointMismatchError, load_pretrained_trunk, trunk_config
from ssl_rl.eval.trunk_architecture import checkpoint_architecture, command_line_keys
from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.run.finetuning import finetune
from ssl_rl.run.training import train
from tests.conftest import FINETUNE_TASKS

DEMO_TASKS = FINETUNE_TASKS
SMALL_KS = "eval.ks=[1,5]"


# Detection at the tiny images' scale: fewer proposals, a shorter side of 96 px.
SMALL_DETECTION = [
    "eval.detector.min_size=96",
    "eval.detector.max_size=128",
    "eval.detector.rpn_post_nms_top_n_train=64",
    "eval.detector.rpn_post_nms_top_n_test=32",
]


def _overrides(task: str) -> list[str]:
    if task.startswith("nn_"):
        return [f"eval={task}", SMALL_KS]
    return [f"eval={task}", *(SMALL_DETECTION if task == "voc07_det" else [])]


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pretrained")


def _pretrain(compose_train, run_dir: Path) -> Path:
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        train(compose_train(["experiment=st"], output_dir=run_dir))
    return run_dir


@pytest.mark.parametrize("task", DEMO_TASKS)
def test_task_runs_from_random_init(task: str, compose_finetune) -> None:
    cfg = compose_finetune(_overrides(task))
    summary = finetune(cfg)
    written = json.loads((Path(cfg.output_dir) / "summary.json").read_text())
    assert written["status"] == "completed", written.get("traceback")
    assert written["init"] == "random"
    metrics = written["metrics"]
    assert summary["metrics"] == metrics
    values = (
        [v for protocol in metrics.values() for v in protocol.values()]
        if task.startswith("nn_")
        else [v for v in metrics.values() if not isinstance(v, dict)]
    )
    assert values and all(0.0 <= v <= 1.0 for v in values)
    headline = {"voc07_det": "map_11pt", "voc12_seg": "miou", "imagenet_nonlinear": "top1"}
    if task in headline:
        assert headline[task] in metrics
    if task == "voc12_seg":
        per_class = metrics["iou_per_class"]
        assert len(per_class) == 21 and per_class["aeroplane"] is not None
        assert per_class["tvmonitor"] in (None, 0.0)  # not in the tiny demo data (3 classes)
    if task == "nn_demo":
        assert set(metrics) == {"ucf101", "voc07"}
        assert set(metrics["ucf101"]) == {"top1", "top5"}


def test_nn_retrieval_from_a_train_checkpoint(compose_train, compose_finetune, pretrained_run):
    run_dir = _pretrain(compose_train, pretrained_run)
    cfg = compose_finetune(["eval=nn_demo", SMALL_KS, f"ckpt={run_dir}"])
    summary = finetune(cfg)
    assert summary["status"] == "completed"
    assert summary["init"] == "pretrained"
    assert summary["pretrained_steps"] == 3
    assert summary["ckpt"].endswith("last.ckpt")


def test_command_line_width_that_disagrees_with_the_checkpoint_is_refused(
    compose_train, compose_finetune, pretrained_run
):
    run_dir = _pretrain(compose_train, pretrained_run)
    cfg = compose_finetune(["eval=nn_ucf101", SMALL_KS, f"ckpt={run_dir}", "trunk.width=0.25"])
    with pytest.raises(CheckpointMismatchError) as error:
        finetune(cfg)
    message = str(error.value)
    assert "last.ckpt" in message
    assert "trunk.width=0.25 on the command line" in message
    assert "checkpoint's trunk has width=0.125" in message
    failed = json.loads((Path(cfg.output_dir) / "summary.json").read_text())
    assert failed["status"] == "failed"


def test_architecture_is_read_from_the_checkpoint(compose_finetune, tmp_path: Path) -> None:
    # A grouped trunk (CaffeNet's original conv2/4/5); the command line says nothing of groups.
    trunk = CaffeNetTrunk(width=0.125, groups=2)
    path = tmp_path / "grouped.ckpt"
    state = {f"trunk.{k}": v for k, v in trunk.state_dict().items()}
    torch.save({"state_dict": state, "trunk_config": trunk_config(trunk)}, path)
    cfg = compose_finetune(["eval=nn_ucf101", SMALL_KS, f"ckpt={path}"])
    assert cfg.trunk.groups == 1
    summary = finetune(cfg)
    assert summary["status"] == "completed"
    assert summary["trunk"] == {"width": 0.125, "groups": 2}


def test_architecture_rules(tmp_path: Path) -> None:
    configured = {"width": 0.25, "groups": 1}
    saved = {"width": 0.125, "groups": 2, "in_channels": 3, "conv1_stride": 2}
    path = tmp_path / "x.ckpt"
    assert checkpoint_architecture(configured, saved, set(), path) == {"width": 0.125, "groups": 2}
    assert checkpoint_architecture(configured, None, set(), path) == configured  # old checkpoint
    agreeing = {"width": 0.125, "groups": 1}
    with pytest.raises(CheckpointMismatchError, match=r"trunk\.groups=1 on the command line"):
        checkpoint_architecture(agreeing, saved, {"width", "groups"}, path)
    assert command_line_keys(["trunk.width=0.5", "+trunk.groups=2", "eval=x", "ckpt=y"]) == {
        "width",
        "groups",
    }


def test_strict_load_reports_missing_and_unexpected_keys(tmp_path: Path) -> None:
    trunk = CaffeNetTrunk(width=0.125)
    state = {f"trunk.{k}": v for k, v in trunk.state_dict().items()}
    state.pop("trunk.conv5.bn.running_var")
    state["trunk.conv6.weight"] = torch.zeros(1)
    state["heads.spatial.fc6.weight"] = torch.zeros(1)  # not a trunk key: ignored
    path = tmp_path / "broken.ckpt"
    torch.save({"state_dict": state, "trunk_config": trunk_config(trunk)}, path)
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: conv5\.bn\.running_var") as e:
        load_pretrained_trunk(CaffeNetTrunk(width=0.125), path)
    assert "unexpected keys: conv6.weight" in str(e.value)


def test_loaded_trunk_equals_the_checkpoint_and_transfers_to_stride_4(tmp_path: Path) -> None:
    source = CaffeNetTrunk(width=0.125, conv1_stride=2)
    state = {f"trunk.{k}": v for k, v in source.state_dict().items()}
    state["heads.temporal.fc6.weight"] = torch.zeros(2, 2)
    path = tmp_path / "ok.ckpt"
    torch.save({"state_dict": state, "global_step": 7}, path)
    target = CaffeNetTrunk(width=0.125, conv1_stride=4)
    report = load_pretrained_trunk(target, path)
    assert report.trained_steps == 7 and report.ignored_keys == 1
    assert report.loaded_keys == len(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_not_a_checkpoint_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.ckpt"
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match=r"notes\.ckpt"):
        load_pretrained_trunk(CaffeNetTrunk(width=0.125), path)
    with pytest.raises(FileNotFoundError, match="ckpt=null"):
        load_pretrained_trunk(CaffeNetTrunk(width=0.125), tmp_path / "missing")
