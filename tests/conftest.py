"""Shared fixtures: the real Hydra configs, composed with tiny sizes for CPU tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def config_names(group: str) -> list[str]:
    """The options of a config group: the names of ``conf/<group>/*.yaml``."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


EXPERIMENTS = config_names("experiment")

# Small enough for seconds per run on 2 CPU cores, big enough to exercise every path.
TINY_OVERRIDES = [
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.max_steps=3",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "logger=csv",
    "data.batch_size=4",
    "data.val_batch_size=8",
    "data.num_workers=0",
    "data.policy_holdout=6",
    "data.val_samples=8",
    "datasets.generate.images.num_classes=3",
    "datasets.generate.images.train_per_class=8",
    "datasets.generate.images.val_per_class=3",
    "datasets.generate.videos.num_classes=3",
    "datasets.generate.videos.groups=4",
    "datasets.generate.videos.clips_per_group=1",
    "datasets.generate.videos.num_frames=16",
    "datasets.generate.voc07.num_classes=3",
    "datasets.generate.voc07.trainval_images=12",
    "datasets.generate.voc07.test_images=12",
    "model.trunk.width=0.125",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    # One policy cycle every 3 steps: validation, pre-episode validation, a 1-step episode.
    "policy_timing.interval=2",
    "policy_timing.episode_steps=1",
    # NN retrieval every 2 steps on 2 frames per video, at 64 px.
    "callbacks.nn_retrieval.frames_per_video=2",
    "callbacks.nn_retrieval.input.size=64",
    "callbacks.nn_retrieval.input.resize=72",
    "callbacks.nn_retrieval.datasets.voc07.crop_size=64",
    "callbacks.nn_retrieval.datasets.voc07.min_crop_area=400",
    "callbacks.nn_retrieval.ks=[1,5]",
    "callbacks.nn_retrieval.batch_size=16",
]


# Applied to every task the composed experiment trains that has the key.
TINY_TASK_OVERRIDES = ["classes.n_perms=12"]
_MISSING = object()


def tiny_train_overrides(overrides: Sequence[str] = ()) -> list[str]:
    """TINY_OVERRIDES, the tiny per-task values for the tasks the overrides compose, then them."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        tasks = compose(config_name="train", overrides=list(overrides)).tasks
    per_task = [
        f"tasks.{name}.{override}"
        for name, task in tasks.items()
        for override in TINY_TASK_OVERRIDES
        if OmegaConf.select(task, override.partition("=")[0], default=_MISSING) is not _MISSING
    ]
    return [*TINY_OVERRIDES, *per_task, *overrides]


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (tiny demo data, permutation sets) shared by the whole test session."""
    return tmp_path_factory.mktemp("data_cache")


@pytest.fixture
def compose_train(data_cache: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/train.yaml`` like ``python train.py`` would, with tiny test sizes."""

    def _compose(overrides: Sequence[str] = (), output_dir: Path | None = None) -> DictConfig:
        tiny = tiny_train_overrides([f"paths.data_cache={data_cache}", *overrides])
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=tiny, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir or tmp_path / "run")
            del cfg.hydra
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


FINETUNE_TASKS = config_names("eval")


FINETUNE_TINY_OVERRIDES = [
    # The same tiny demo data as the pretraining tests.
    *(o for o in TINY_OVERRIDES if o.startswith("datasets.generate.")),
    "trunk.width=0.125",
    "input.size=64",
    "input.resize=72",
    "datasets.voc07.crop_size=64",
    "datasets.voc07.min_crop_area=400",
    "loader.batch_size=4",
    "loader.num_workers=0",
    "trainer.accelerator=cpu",
    "trainer.max_steps=3",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "transfer_head.fc6_dim=32",
    "transfer_head.fc7_dim=32",
]


@pytest.fixture
def compose_finetune(data_cache: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/finetune.yaml`` like ``python finetune.py``, with tiny sizes."""

    def _compose(overrides: Sequence[str] = (), output_dir: Path | None = None) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name="finetune",
                overrides=[*FINETUNE_TINY_OVERRIDES, f"paths.data_cache={data_cache}", *overrides],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.output_dir = str(output_dir or tmp_path / "finetune")
            del cfg.hydra
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


def trained_st_run(compose_train: Callable[..., DictConfig], run_dir: Path) -> Path:
    """``run_dir`` holding a tiny ``experiment=st`` run, trained on first use."""
    from ssl_rl.run.training import train  # only the tests that train need the package

    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        train(compose_train(["experiment=st"], output_dir=run_dir))
    return run_dir
