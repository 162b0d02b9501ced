"""Expected user errors end both scripts with their message and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssl_rl.data.errors import DatasetError
from ssl_rl.run.errors import CheckpointNotFound, ConfigRefused, exit_quietly_on
from ssl_rl.run.finetuning import finetune
from ssl_rl.run.summary import EXPECTED_ERRORS
from tests.train_process import run_expected_error


def test_expected_error_exits_quietly_unless_hydra_full_error(monkeypatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exited, exit_quietly_on(EXPECTED_ERRORS):
        raise ConfigRefused("fix this")
    assert exited.value.code == 1
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigRefused), exit_quietly_on(EXPECTED_ERRORS):
        raise ConfigRefused("fix this")
    with pytest.raises(KeyError), exit_quietly_on(EXPECTED_ERRORS):
        raise KeyError("a bug keeps its traceback")


def test_finetune_missing_checkpoint_without_traceback(tmp_path: Path) -> None:
    output = run_expected_error("finetune.py", tmp_path, "eval=voc07_cls", "ckpt=/nonexistent.ckpt")
    assert output.count("no checkpoint at /nonexistent.ckpt") == 1
    assert "ckpt=null for the random-init baseline" in output
    assert not (tmp_path / "cache").exists(), "refused before the demo data are made"


def test_checkpoint_errors_are_expected() -> None:
    from ssl_rl.eval.pretrained import CheckpointMismatchError, resolve_pretrained_path
    from ssl_rl.run.training import resolve_checkpoint

    assert issubclass(CheckpointMismatchError, EXPECTED_ERRORS)
    with pytest.raises(CheckpointNotFound, match="init_from='/nope'"):
        resolve_pretrained_path("/nope", key="init_from")
    with pytest.raises(FileNotFoundError, match="ckpt_path='/nope'"):
        resolve_checkpoint("/nope")
    assert issubclass(CheckpointNotFound, EXPECTED_ERRORS)


def test_finetune_missing_data_names_the_paths_root(compose_finetune, tmp_path: Path) -> None:
    cfg = compose_finetune(
        [
            "eval=voc07_cls",
            f"paths.voc07={tmp_path / 'VOC2007'}",
            "datasets.voc07.root=${paths.voc07}",
        ]
    )
    with pytest.raises(DatasetError, match=r"voc07 data not found under paths\.voc07="):
        finetune(cfg)
