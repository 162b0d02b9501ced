"""Evaluate a pretrained trunk: ``python finetune.py eval=nn_demo ckpt=<run dir>`` (see README)."""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ssl_rl.run.errors import exit_quietly_on
from ssl_rl.run.finetuning import finetune
from ssl_rl.run.known_noise import quiet_known_noise
from ssl_rl.run.summary import EXPECTED_ERRORS


@hydra.main(version_base="1.3", config_path="conf", config_name="finetune")
def main(cfg: DictConfig) -> None:
    quiet_known_noise()
    with exit_quietly_on(EXPECTED_ERRORS):
        # In a multirun (e.g. over splits) one failing job is recorded; the others still run.
        finetune(cfg, reraise=HydraConfig.get().mode != RunMode.MULTIRUN)


if __name__ == "__main__":
    main()
