"""Readable refusals: a checkpoint of another experiment, data that is not where paths.* say."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from ssl_rl.run.errors import ConfigRefused
from ssl_rl.run.resume import check_same_run
from ssl_rl.run.training import train
from tests.train_process import run_expected_error

REPO = Path(__file__).resolve().parents[1]


def test_checkpoint_of_another_experiment_is_refused_readably(compose_train, tmp_path: Path):
    source = tmp_path / "s_run"
    train(compose_train(["experiment=s", "trainer.max_steps=2"], output_dir=source))
    cfg = compose_train(["experiment=st", f"ckpt_path={source}"], output_dir=tmp_path / "st")
    with pytest.raises(ConfigRefused) as refused:
        train(cfg)
    message = str(refused.value)
    assert "experiment 'st'" in message and "tasks: spatial, temporal" in message
    assert "from experiment 's' (tasks: spatial)" in message  # what the checkpoint is
    assert "heads.temporal" in message and "init_from=" in message
    assert "Missing key(s)" not in message


def test_run_saved_before_run_dir_resolver_still_resumes(tmp_path: Path) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        saved = compose(config_name="train")  # .hydra/config.yaml: the job config, unresolved
    GlobalHydra.instance().clear()
    assert saved.paths._get_node("output_dir")._value() == "${run_dir:}"
    with open_dict(saved):
        saved.paths.output_dir = "${hydra:runtime.output_dir}"  # as earlier runs saved it
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(saved, tmp_path / ".hydra" / "config.yaml")
    check_same_run(tmp_path, [])  # not refused


def test_missing_imagenet_names_the_paths_key_once_without_traceback(tmp_path: Path) -> None:
    output = run_expected_error(
        "train.py",
        tmp_path,
        "scale=paper",
        "paths.imagenet=/nope",
        "tasks.spatial.classes.n_perms=12",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        unset="IMAGENET_ROOT",
    )
    assert output.count("paths.imagenet") == 1 + output.count("paths.imagenet=/nope")
    assert "`paths.imagenet=<dir>`" in output and "IMAGENET_ROOT" in output
    assert "data.spatial.train_root" not in output


def test_skipped_files_are_counted_per_dataset() -> None:
    from types import SimpleNamespace

    from torch.utils.data import Subset

    from ssl_rl.run.end_report import end_report
    from ssl_rl.run.training import skipped_files

    images = SimpleNamespace(skipped_count=2, skipped_files=[Path("a.JPEG"), Path("b.JPEG")])
    clips = SimpleNamespace(skipped_count=1, stats={"corrupt": 1})
    datamodule = SimpleNamespace(
        train_sets={"spatial": Subset(images, [0]), "temporal": clips},  # type: ignore[arg-type]
        val_sets={"spatial": SimpleNamespace(skipped_count=0)},
    )
    skipped = skipped_files(datamodule)  # type: ignore[arg-type]
    assert skipped == {
        "spatial/train": {"count": 2, "files": ["a.JPEG", "b.JPEG"]},
        "temporal/train": {"count": 1, "reasons": {"corrupt": 1}},
    }
    report = end_report({"status": "completed", "skipped": skipped}, "x/summary.json")
    assert "spatial/train: 2" in report and report.endswith("summary: x/summary.json")
