"""The SLURM launcher config composes for the grid and targets the installed submitit plugin."""

from __future__ import annotations

import warnings

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class

from tests.conftest import CONF_DIR


def test_submitit_slurm_launcher_requests_one_task_per_gpu() -> None:
    GlobalHydra.instance().clear()
    with warnings.catch_warnings(), initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        warnings.simplefilter("ignore", UserWarning)  # Hydra's schema-matching notice
        cfg = compose(
            "train",
            overrides=[
                "hydra/launcher=submitit_slurm",
                "experiment=st_policy",
                "trainer.devices=4",
            ],
            return_hydra_config=True,
        )
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert get_class(launcher._target_).__name__ == "SlurmLauncher"
    assert launcher.gpus_per_node == 4 and launcher.tasks_per_node == 4  # DDP: a task per GPU
    assert launcher.submitit_folder.endswith(".submitit/%j")
