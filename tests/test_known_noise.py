"""Known third-party noise is filtered by message and module; everything else still shows."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
from pytorch_lightning.demos.boring_classes import BoringModel
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities.warnings import PossibleUserWarning

from ssl_rl.checkpoints.atomic_io import save_last
from ssl_rl.run.known_noise import KNOWN_LOG_LINES, quiet_known_noise, quiet_resume
from ssl_rl.run.training import _save_final_checkpoint

LEAFSPEC = "`isinstance(treespec, LeafSpec)` is deprecated, use something else"


@pytest.fixture
def quiet(monkeypatch):
    for name, _ in KNOWN_LOG_LINES:
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "filters", list(logger.filters))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        quiet_known_noise()
        quiet_known_noise()  # idempotent
        yield shown


def _warn(message: str, category: type[Warning], module: str) -> None:
    warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 21, module=module)


def test_known_warning_is_dropped_other_warnings_show(quiet) -> None:
    from pytorch_lightning.utilities._pytree import _tree_flatten

    _tree_flatten(1)  # Lightning's own LeafSpec() (warns with torch >= 2.10)
    _warn(LEAFSPEC, FutureWarning, "pytorch_lightning.utilities._pytree")
    short = "The number of training batches (6) is smaller than the logging interval Trainer(...)"
    _warn(short, PossibleUserWarning, "pytorch_lightning.loops.fit_loop")
    assert quiet == []
    _warn(LEAFSPEC, FutureWarning, "ssl_rl.module")  # the same words from elsewhere
    _warn("something new", FutureWarning, "pytorch_lightning.utilities._pytree")
    assert [str(w.message) for w in quiet] == [LEAFSPEC, "something new"]


def test_lightning_tip_is_dropped_other_lightning_info_shows(quiet, caplog, tmp_path) -> None:
    with caplog.at_level(logging.INFO):
        pl.Trainer(logger=CSVLogger(tmp_path), enable_progress_bar=False)
    messages = [r.getMessage() for r in caplog.records]
    assert not any("Tip" in m for m in messages)
    assert any("GPU available" in m for m in messages), "other Lightning lines still show"


def test_own_checkpoint_saves_set_weights_only(caplog, tmp_path: Path) -> None:
    trainer = pl.Trainer(
        max_steps=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        limit_val_batches=0,
    )
    trainer.fit(BoringModel())
    with caplog.at_level(logging.INFO):
        _save_final_checkpoint(trainer)
        save_last(trainer)  # what a stop signal and a failure save
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert not any("weights_only" in r.getMessage() for r in caplog.records)


def test_checkpoint_dir_warnings_dropped_only_while_resuming(tmp_path: Path) -> None:
    not_empty = "Checkpoint directory /runs/st/checkpoints exists and is not empty."
    moved = "The dirpath has changed from '/runs/a/checkpoints' to '/runs/b/checkpoints', ..."
    module = "pytorch_lightning.callbacks.model_checkpoint"
    own = tmp_path / "run" / "checkpoints"
    shown_by_case = {}
    for case, ckpt_path in {
        "in place": own / "last.ckpt",
        "new directory": tmp_path / "other" / "checkpoints" / "last.ckpt",
        "new run": None,
    }.items():
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            with quiet_resume(None if ckpt_path is None else str(ckpt_path), own):
                _warn(not_empty, UserWarning, module)
                _warn(moved, UserWarning, module)
            _warn(not_empty, UserWarning, module)  # the filters end with the resumed fit
        shown_by_case[case] = [str(w.message) for w in shown]
    assert shown_by_case == {
        "in place": [moved, not_empty],
        "new directory": [not_empty, not_empty],
        "new run": [not_empty, moved, not_empty],
    }
