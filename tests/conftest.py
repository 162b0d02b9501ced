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
    "model.tasks.spatial.num_permutations=12",
    "model.tasks.temporal.num_permutations=12",
    "model.trunk.width=0.125",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    # One policy cycle every 3 steps: validation, pre-episode validation, a 1-step episode.
    "policy_timing.interval=2",
    "policy_timing.episode_steps=1",
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
