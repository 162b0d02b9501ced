"""Pretrain: ``python train.py experiment=st_policy`` (see README for the ablation grid)."""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ssl_rl.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    # In a multirun one failing job is recorded in its summary.json; the others still run.
    train(cfg, reraise=HydraConfig.get().mode != RunMode.MULTIRUN)


if __name__ == "__main__":
    main()
