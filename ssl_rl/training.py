"""Pretraining run: compose, instantiate, fit, validate, summarise."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import Logger, WandbLogger

from ssl_rl.callbacks.train_metrics import TrainMetricWindow
from ssl_rl.data.datamodule import OrderingDataModule
from ssl_rl.init_from import load_initial_weights
from ssl_rl.module import OrderingPretrainer
from ssl_rl.run_summary import recorded_run, task_metrics
from ssl_rl.tasks import build_tasks

log = logging.getLogger(__name__)


def train(cfg: DictConfig, reraise: bool = True) -> dict[str, Any]:
    """Run one pretraining job and write ``summary.json``; return the summary.

    With ``reraise=False`` (Hydra multiruns) a failure is recorded in the summary and the
    sweep goes on with its other jobs.
    """
    output_dir = Path(cfg.paths.output_dir)
    summary: dict[str, Any] = {
        "experiment": cfg.name,
        "seed": cfg.seed,
        "tags": list(cfg.tags),
        "output_dir": str(output_dir),
    }
    trainers: list[pl.Trainer] = []

    def on_exit() -> None:
        if trainers:
            summary.setdefault("steps", trainers[0].global_step)
            _close_loggers(trainers[0])

    with recorded_run(output_dir / "summary.json", summary, reraise, on_exit):
        pl.seed_everything(cfg.seed, workers=True)
        ckpt_path = resolve_checkpoint(cfg.ckpt_path)
        init_from = cfg.get("init_from")
        if ckpt_path is not None and init_from:
            raise ValueError(
                "ckpt_path resumes a run (everything restored) and init_from starts a new one "
                "from its weights only; set one of them"
            )
        if ckpt_path is not None:
            _resume_wandb_run(cfg, ckpt_path)
        datamodule, model = build_data_and_model(cfg)
        if init_from:
            summary["init_from"] = str(load_initial_weights(model, init_from))
        window = TrainMetricWindow()
        callbacks = [*instantiate_group(cfg.get("callbacks")), window]
        policy = hydra.utils.instantiate(cfg.policy, _convert_="all") if cfg.get("policy") else None
        if policy is not None:
            callbacks.append(policy)
        loggers: list[Logger] = instantiate_group(cfg.get("logger"))
        trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
        trainers.append(trainer)
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        _save_final_checkpoint(trainer)
        val_metrics = trainer.validate(model, datamodule=datamodule, verbose=False)
        final = {**window.means(), **{k: v for d in val_metrics for k, v in d.items()}}
        summary.update(
            status="completed",
            steps=trainer.global_step,
            metrics=task_metrics(final),
            chance={t: 1.0 / p.num_classes for t, p in model.permutations.items()},
            checkpoint=_last_checkpoint(trainer),
        )
        if policy is not None:
            summary["policy"] = policy.summary()
    return summary


def build_data_and_model(cfg: DictConfig) -> tuple[OrderingDataModule, OrderingPretrainer]:
    """The datamodule and the module, sharing the scheduled tasks built once from ``cfg.tasks``."""
    tasks = build_tasks(cfg.tasks, list(cfg.schedule.tasks))
    # Partials called with the tasks: instantiate() would turn kwargs into config nodes.
    datamodule = hydra.utils.instantiate(cfg.data, _partial_=True, _convert_="all")(tasks=tasks)
    model = hydra.utils.instantiate(cfg.model, _partial_=True, _convert_="all")(tasks=tasks)
    return datamodule, model


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group dict (callbacks, loggers) that has a target."""
    if not group:
        return []
    return [
        hydra.utils.instantiate(node, _convert_="all")
        for node in group.values()
        if isinstance(node, DictConfig) and "_target_" in node
    ]


def resolve_checkpoint(value: str | None) -> str | None:
    """A checkpoint file, or a run directory whose ``checkpoints/last.ckpt`` is taken."""
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={value!r}: no checkpoint at {path}; pass a .ckpt file or a run directory "
            "containing checkpoints/last.ckpt"
        )
    return str(path)


def _resume_wandb_run(cfg: DictConfig, ckpt_path: str) -> None:
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if wandb_cfg is None or wandb_cfg.get("id"):
        return
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    run_id = checkpoint.get("wandb_run_id")
    if run_id:
        with open_dict(cfg):
            cfg.logger.wandb.id = run_id
        log.info("resuming W&B run %s", run_id)


def _save_final_checkpoint(trainer: pl.Trainer) -> None:
    """``last.ckpt`` holds the end of training even when max_steps is off the save period."""
    callback = trainer.checkpoint_callback
    if callback is None or not getattr(callback, "dirpath", None):
        return
    path = Path(callback.dirpath) / "last.ckpt"
    trainer.save_checkpoint(path)
    callback.last_model_path = str(path)


def _last_checkpoint(trainer: pl.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if callback is None:
        return None
    last = getattr(callback, "last_model_path", "") or callback.best_model_path
    return last or None


def _close_loggers(trainer: pl.Trainer | None) -> None:
    # A crashed job must not leave its W&B run open and break the next job of a sweep.
    if trainer is None:
        return
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            wandb.finish()
