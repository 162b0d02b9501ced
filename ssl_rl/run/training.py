"""Pretraining run: compose, instantiate, fit, validate, summarise."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from ssl_rl.callbacks.divergence import DivergenceGuard
from ssl_rl.callbacks.graceful_stop import GracefulStop
from ssl_rl.callbacks.host_syncs import HostSyncReport
from ssl_rl.callbacks.nn_retrieval import NearestNeighbourMonitor
from ssl_rl.callbacks.save_on_failure import SaveOnFailure
from ssl_rl.callbacks.throughput import ThroughputMonitor
from ssl_rl.callbacks.train_metrics import TrainMetricWindow
from ssl_rl.checkpoints.atomic_io import AtomicCheckpointIO, check_complete
from ssl_rl.checkpoints.loading import is_safetensors, load_checkpoint
from ssl_rl.data.datamodule import OrderingDataModule
from ssl_rl.data.errors import DatasetError
from ssl_rl.module import OrderingPretrainer
from ssl_rl.run.checkpoint_match import ExperimentStamp, check_checkpoint_matches
from ssl_rl.run.data_roots import with_data_roots
from ssl_rl.run.end_report import end_report
from ssl_rl.run.errors import CheckpointNotFound, ConfigRefused
from ssl_rl.run.init_from import load_initial_weights
from ssl_rl.run.known_noise import quiet_resume
from ssl_rl.run.summary import recorded_run, task_metrics
from ssl_rl.tasks import build_tasks

log = logging.getLogger(__name__)


def train(cfg: DictConfig, reraise: bool = True) -> dict[str, Any]:
    """Run one pretraining job and write ``summary.json``; return the summary.

    With ``reraise=False`` (Hydra multiruns) a failure is recorded in the summary and the
    sweep goes on with its other jobs. Divergence and stop signals end the run at a step
    boundary (see :mod:`ssl_rl.run.errors`); every end is recorded, then reported in a few
    lines (:func:`~ssl_rl.run.end_report.end_report`).
    """
    output_dir = Path(cfg.paths.output_dir)
    summary_path = output_dir / "summary.json"
    summary: dict[str, Any] = {
        "experiment": cfg.name,
        "seed": cfg.seed,
        "tags": list(cfg.tags),
        "output_dir": str(output_dir),
    }
    trainers: list[pl.Trainer] = []
    datamodules: list[OrderingDataModule] = []

    def on_exit() -> None:
        if datamodules:
            skipped = skipped_files(datamodules[0])
            if skipped:
                summary["skipped"] = skipped
            if datamodules[0].worker_restarts_used:
                summary["worker_restarts"] = datamodules[0].worker_restarts_used
        if trainers:
            summary.setdefault("steps", trainers[0].global_step)
            summary.update(callback_summaries(trainers[0]))
            # Lightning's callback connector sets Trainer.callbacks; the class does not declare it.
            callbacks = trainers[0].callbacks  # type: ignore[attr-defined]
            savers = [c for c in callbacks if isinstance(c, SaveOnFailure)]
            if summary["status"] == "failed" and savers and savers[0].failure:
                summary.update(savers[0].failure)
            _close_loggers(trainers[0])

    try:
        with recorded_run(summary_path, summary, reraise, on_exit):
            try:
                _fit(cfg, output_dir, summary, trainers, datamodules)
            except DatasetError as error:
                raise with_data_roots(error, cfg.paths) from error
    finally:
        if rank_zero_only.rank == 0:  # type: ignore[attr-defined]  # set by Lightning at import
            log.info("run ended:\n%s", end_report(summary, str(summary_path)))
            _log_how_to_continue(summary, output_dir)
    return summary


def _fit(
    cfg: DictConfig,
    output_dir: Path,
    summary: dict[str, Any],
    trainers: list[pl.Trainer],
    datamodules: list[OrderingDataModule],
) -> None:
    pl.seed_everything(cfg.seed, workers=True)
    resume, init_from = cfg.get("resume"), cfg.get("init_from")
    if resume and cfg.ckpt_path:
        raise ConfigRefused("set resume (continue in the run directory) or ckpt_path, not both")
    ckpt_path = resolve_checkpoint(resume or cfg.ckpt_path, "resume" if resume else "ckpt_path")
    if ckpt_path is None:
        ckpt_path = requeued_checkpoint(output_dir)
    if ckpt_path is not None:
        refuse_export(ckpt_path)
        check_complete(ckpt_path, "resume" if resume else "ckpt_path")
    if ckpt_path is not None and init_from:
        raise ConfigRefused(
            "ckpt_path resumes a run (everything restored) and init_from starts a new one "
            "from its weights only; set one of them"
        )
    trust = bool(cfg.get("trust_checkpoint", False))
    checkpoint = resume_checkpoint(ckpt_path, trust) if ckpt_path else {}
    if ckpt_path is not None:
        _resume_wandb_run(cfg, checkpoint)
        summary["resumed_from"] = {"checkpoint": ckpt_path, "step": checkpoint.get("global_step")}
    datamodule, model = build_data_and_model(cfg)
    datamodules.append(datamodule)
    if ckpt_path is not None:
        check_checkpoint_matches(checkpoint, ckpt_path, model, str(cfg.name))
    del checkpoint
    if init_from:
        summary["init_from"] = str(load_initial_weights(model, init_from, trust=trust))
    window = TrainMetricWindow()
    callbacks = [*instantiate_group(cfg.get("callbacks")), window, divergence_guard(cfg)]
    callbacks.append(SaveOnFailure())
    callbacks.append(ExperimentStamp(str(cfg.name)))
    policy = hydra.utils.instantiate(cfg.policy, _convert_="all") if cfg.get("policy") else None
    if policy is not None:
        callbacks.append(policy)
    # Last: a stop saves the state every other callback has reached at the step boundary.
    callbacks.append(GracefulStop())
    loggers: list[Logger] = instantiate_group(cfg.get("logger"))
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()]
    )
    trainers.append(trainer)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    # Lightning reads the file again: weights-only too (it was checked safe above).
    with quiet_resume(ckpt_path, output_dir / "checkpoints"):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=not trust)
    _save_final_checkpoint(trainer)
    val_metrics = trainer.validate(model, datamodule=datamodule, verbose=False)
    final = {**window.means(), **{k: v for d in val_metrics for k, v in d.items()}}
    summary.update(
        status="completed",
        steps=trainer.global_step,
        metrics=task_metrics(final),
        chance={t: 1.0 / model.tasks[t].num_classes for t in model.permutations},
        checkpoint=_last_checkpoint(trainer),
    )
    monitors = [c for c in callbacks if isinstance(c, NearestNeighbourMonitor) and c.history]
    if monitors:
        summary["nn_retrieval"] = monitors[0].history[-1]
    if policy is not None:
        summary["policy"] = policy.summary()


def build_data_and_model(cfg: DictConfig) -> tuple[OrderingDataModule, OrderingPretrainer]:
    """The datamodule and the module, sharing the scheduled tasks built once from ``cfg.tasks``."""
    tasks = build_tasks(cfg.tasks, list(cfg.schedule.tasks))
    # Partials called with the tasks: instantiate() would turn kwargs into config nodes.
    datamodule = hydra.utils.instantiate(cfg.data, _partial_=True, _convert_="all")(tasks=tasks)
    model = hydra.utils.instantiate(cfg.model, _partial_=True, _convert_="all")(tasks=tasks)
    return datamodule, model


def divergence_guard(cfg: DictConfig) -> DivergenceGuard:
    return DivergenceGuard(check_every_n_steps=int(cfg.get("divergence_check_every_n_steps", 1)))


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group dict (callbacks, loggers) that has a target."""
    if not group:
        return []
    return [
        hydra.utils.instantiate(node, _convert_="all")
        for node in group.values()
        if isinstance(node, DictConfig) and "_target_" in node
    ]


def resolve_checkpoint(value: str | None, key: str = "ckpt_path") -> str | None:
    """A checkpoint file, or a run directory whose ``checkpoints/last.ckpt`` is taken."""
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise CheckpointNotFound(
            f"{key}={value!r}: no checkpoint at {path}; pass a .ckpt file or a run directory "
            "containing checkpoints/last.ckpt"
        )
    return str(path)


def refuse_export(path: str) -> None:
    """An exported trunk (weights only: no optimiser, step or policy) cannot be resumed."""
    if is_safetensors(Path(path)):
        raise ConfigRefused(
            f"{path}: an exported trunk holds weights only, not the optimiser, step and policy "
            "a resume needs; start a new run from it with init_from= instead"
        )


def resume_checkpoint(path: str, trust: bool = False) -> dict[str, Any]:
    """The checkpoint a run resumes from, read weights-only unless ``trust``; an exported trunk
    (weights only: no optimiser, step or policy) is refused with what to use instead."""
    refuse_export(path)
    checkpoint = load_checkpoint(path, trust=trust)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigRefused(f"{path}: not a train.py checkpoint (no 'state_dict' entry)")
    return checkpoint


def requeued_checkpoint(output_dir: Path) -> str | None:
    """Under SLURM, a requeued job finds its own interrupted run in its directory: continue it."""
    path = output_dir / "checkpoints" / "last.ckpt"
    summary = output_dir / "summary.json"
    if "SLURM_JOB_ID" not in os.environ or not path.is_file() or not summary.is_file():
        return None
    if json.loads(summary.read_text()).get("status") != "interrupted":
        return None
    log.info("requeued job: continuing the interrupted run from %s", path)
    return str(path)


def skipped_files(datamodule: OrderingDataModule) -> dict[str, dict[str, Any]]:
    """Per dataset (``<task>/<split>``) with skips: the count over all workers, the reasons
    and the files this process skipped (workers name theirs in the log)."""
    skipped: dict[str, dict[str, Any]] = {}
    for split in ("train", "val", "policy"):
        for task, dataset in (getattr(datamodule, f"{split}_sets", None) or {}).items():
            while not hasattr(dataset, "skipped_count") and hasattr(dataset, "dataset"):
                dataset = dataset.dataset
            count = int(getattr(dataset, "skipped_count", 0))
            if count:
                entry: dict[str, Any] = {"count": count}
                stats = getattr(dataset, "stats", None)
                if stats:
                    entry["reasons"] = dict(stats)
                files = getattr(dataset, "skipped_files", None)
                if files:
                    entry["files"] = [str(f) for f in files]
                skipped[f"{task}/{split}"] = entry
                log.warning("%s/%s: %d file(s) skipped: %s", task, split, count, entry)
    return skipped


# summary.json's blocks written by callbacks that measure the run, each under its key.
SUMMARY_CALLBACKS: dict[str, type[ThroughputMonitor] | type[HostSyncReport]] = {
    "throughput": ThroughputMonitor,
    "host_syncs": HostSyncReport,
}


def callback_summaries(trainer: pl.Trainer) -> dict[str, dict[str, Any]]:
    """The run's speed (:class:`ThroughputMonitor`) and the training step's host
    synchronisations (:class:`HostSyncReport`), for the callbacks present that measured any."""
    blocks: dict[str, dict[str, Any]] = {}
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        for key, kind in SUMMARY_CALLBACKS.items():
            block = callback.summary() if isinstance(callback, kind) else None
            if block is not None:
                blocks[key] = block
    return blocks


def _resume_wandb_run(cfg: DictConfig, checkpoint: dict[str, Any]) -> None:
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if wandb_cfg is None or wandb_cfg.get("id"):
        return
    run_id = checkpoint.get("wandb_run_id")
    if run_id:
        with open_dict(cfg):
            cfg.logger.wandb.id = run_id
        log.info("resuming W&B run %s", run_id)


def _save_final_checkpoint(trainer: pl.Trainer) -> None:
    """``last.ckpt`` holds the end of training even when max_steps is off the save period."""
    callback = trainer.checkpoint_callback
    dirpath = getattr(callback, "dirpath", None)
    if callback is None or not dirpath:
        return
    path = Path(dirpath) / "last.ckpt"
    trainer.save_checkpoint(path, weights_only=False)  # resumable: optimiser, loops, callbacks
    callback.last_model_path = str(path)  # type: ignore[attr-defined]  # see _last_checkpoint


def _last_checkpoint(trainer: pl.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if callback is None:
        return None
    # Checkpoint declares neither attribute; the run's checkpoint callback is a ModelCheckpoint.
    last = getattr(callback, "last_model_path", "") or callback.best_model_path  # type: ignore[attr-defined]
    return last or None


def _log_how_to_continue(summary: dict[str, Any], output_dir: Path) -> None:
    """A failed run with a checkpoint: the one line that continues it."""
    last = output_dir / "checkpoints" / "last.ckpt"
    if summary.get("status") == "failed" and last.is_file():
        log.error(
            "run %s failed at step %s (%s); continue from %s with `python train.py resume=%s`",
            output_dir,
            summary.get("failed_step", summary.get("steps", "?")),
            summary.get("error_type", "error"),
            summary.get("checkpoint", last),
            output_dir,
        )


def _close_loggers(trainer: pl.Trainer | None) -> None:
    # A crashed job must not leave its W&B run open and break the next job of a sweep.
    if trainer is None:
        return
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            wandb.finish()
