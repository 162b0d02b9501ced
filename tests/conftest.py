"""Shared fixtures: the real Hydra configs, composed with tiny sizes for CPU tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))

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
    "data.demo.images.num_classes=3",
    "data.demo.images.train_per_class=8",
    "data.demo.images.val_per_class=3",
    "data.demo.videos.num_classes=3",
    "data.demo.videos.groups=4",
    "data.demo.videos.clips_per_group=1",
    "data.demo.videos.num_frames=16",
    "data.demo.voc07.num_classes=3",
    "data.demo.voc07.trainval_images=12",
    "data.demo.voc07.test_images=12",
    "model.tasks.spatial.num_permutations=12",
    "model.tasks.temporal.num_permutations=12",
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
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name="train",
                overrides=[*TINY_OVERRIDES, f"paths.data_cache={data_cache}", *overrides],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir or tmp_path / "run")
            del cfg.hydra
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


FINETUNE_CONF_DIR = CONF_DIR / "finetune"
FINETUNE_TASKS = sorted(p.stem for p in (FINETUNE_CONF_DIR / "task").glob("*.yaml"))


def _tiny_demo_pretraining() -> str:
    """The TINY_OVERRIDES generator sizes, for finetune's ``demo.pretraining`` (same data)."""
    entries = []
    for override in TINY_OVERRIDES:
        key, _, value = override.partition("=")
        if key.startswith("data.demo."):
            entries.append(f"{key.removeprefix('data.demo.')}: {value}")
    nested: dict[str, dict[str, str]] = {}
    for entry in entries:
        path, _, value = entry.partition(": ")
        group, _, name = path.partition(".")
        nested.setdefault(group, {})[name] = value
    return (
        "{"
        + ", ".join(
            f"{group}: {{" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}"
            for group, fields in nested.items()
        )
        + "}"
    )


FINETUNE_TINY_OVERRIDES = [
    f"++demo.pretraining={_tiny_demo_pretraining()}",
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
    """Compose ``conf/finetune/finetune.yaml`` like ``python finetune.py``, with tiny sizes."""

    def _compose(overrides: Sequence[str] = (), output_dir: Path | None = None) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(FINETUNE_CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name="finetune",
                overrides=[*FINETUNE_TINY_OVERRIDES, f"data_cache={data_cache}", *overrides],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.output_dir = str(output_dir or tmp_path / "finetune")
            del cfg.hydra
        return cfg

    yield _compose
    GlobalHydra.instance().clear()
