"""Pretrain: ``python train.py experiment=st_policy`` (see README for the ablation grid).

``python train.py resume=<run dir>`` continues a run in its directory with its saved settings.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ssl_rl.run.errors import ConfigRefused, RunInterrupted, exit_quietly_on
from ssl_rl.run.known_noise import quiet_known_noise
from ssl_rl.run.resume import resume_arguments
from ssl_rl.run.summary import EXPECTED_ERRORS
from ssl_rl.run.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    quiet_known_noise()
    with exit_quietly_on(EXPECTED_ERRORS):
        try:
            # In a multirun one failing job is recorded in its summary.json; the others still run.
            train(cfg, reraise=HydraConfig.get().mode != RunMode.MULTIRUN)
        except RunInterrupted as stop:
            if stop.then is not None:
                stop.then()  # submitit's handler: requeue the job
            sys.exit(stop.exit_code)


if __name__ == "__main__":
    try:
        sys.argv[1:] = resume_arguments(sys.argv[1:])
    except ConfigRefused as error:
        sys.exit(f"error: {error}")
    main()
