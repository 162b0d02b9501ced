"""One transfer / evaluation run of ``finetune.py``: build, (fine-)tune or retrieve, summarise."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from ssl_rl.data.errors import DatasetError
from ssl_rl.eval import datasets as eval_data
from ssl_rl.eval.nn_retrieval import retrieval_topk
from ssl_rl.eval.pretrained import (
    load_pretrained_trunk,
    resolve_pretrained_path,
    saved_trunk_config,
)
from ssl_rl.eval.transfer_tasks import BUILDERS
from ssl_rl.eval.trunk_architecture import (
    ARCHITECTURE_KEYS,
    checkpoint_architecture,
    command_line_keys,
)
from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.run.data_roots import with_data_roots
from ssl_rl.run.summary import recorded_run

log = logging.getLogger(__name__)


def finetune(cfg: DictConfig, reraise: bool = True) -> dict[str, Any]:
    """Run ``cfg.eval`` on the trunk of ``cfg.ckpt`` (or a random one); write ``summary.json``."""
    output_dir = Path(cfg.output_dir)
    summary: dict[str, Any] = {
        "task": cfg.eval.name,
        "ckpt": cfg.ckpt,
        "init": "pretrained" if cfg.ckpt else "random",
        "seed": cfg.seed,
        "output_dir": str(output_dir),
    }
    with recorded_run(output_dir / "summary.json", summary, reraise):
        try:
            _evaluate(cfg, summary)
        except DatasetError as error:
            raise with_data_roots(error, cfg.paths) from error
    return summary


def _evaluate(cfg: DictConfig, summary: dict[str, Any]) -> None:
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.ckpt:  # a wrong ckpt is refused before the demo data are made
        adopt_checkpoint_architecture(cfg)
    prepare_datasets(cfg)
    summary["trunk"] = {key: cfg.trunk[key] for key in ARCHITECTURE_KEYS}
    trunk: CaffeNetTrunk = hydra.utils.instantiate(cfg.trunk)
    if cfg.ckpt:
        report = load_pretrained_trunk(trunk, cfg.ckpt, trust=cfg.trust_checkpoint)
        summary.update(ckpt=str(report.path), pretrained_steps=report.trained_steps)
    kind = cfg.eval.kind
    if kind == "nn":
        metrics = run_retrieval(cfg, trunk)
    elif kind in BUILDERS:
        metrics = run_training(cfg, trunk)
    else:
        raise ValueError(f"eval.kind={kind!r} is unknown; use one of {['nn', *BUILDERS]}")
    summary.update(status="completed", metrics=metrics)
    log.info("%s (%s init): %s", cfg.eval.name, summary["init"], metrics)


def adopt_checkpoint_architecture(cfg: DictConfig) -> None:
    """Set ``cfg.trunk.width`` / ``groups`` to the checkpoint's; refuse a command-line value
    that disagrees (both values named)."""
    path = resolve_pretrained_path(cfg.ckpt)
    explicit = (
        command_line_keys(HydraConfig.get().overrides.task) if HydraConfig.initialized() else set()
    )
    saved = saved_trunk_config(path, trust=cfg.trust_checkpoint)
    architecture = checkpoint_architecture(cfg.trunk, saved, explicit, path)
    for key, value in architecture.items():
        if cfg.trunk[key] != value:
            log.info("trunk.%s=%s from the checkpoint (configured: %s)", key, value, cfg.trunk[key])
        cfg.trunk[key] = value


def prepare_datasets(cfg: DictConfig) -> None:
    """Run ``datasets.generate`` if the datasets have one (the demo data, made on first use)."""
    generate = OmegaConf.select(cfg, "datasets.generate")
    if generate is not None:
        hydra.utils.instantiate(generate, _convert_="all")()


def resolve_device(accelerator: str) -> torch.device:
    """The device retrieval runs on (``trainer.accelerator``: auto, cpu, gpu, cuda)."""
    if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(f"trainer.accelerator={accelerator} but no CUDA device is available")
    return torch.device("cuda")


def run_retrieval(cfg: DictConfig, trunk: CaffeNetTrunk) -> dict[str, dict[str, float]]:
    """Top-k retrieval accuracy per protocol (``{"ucf101": {"top1": ...}, "voc07": {...}}``)."""
    device = resolve_device(cfg.trainer.accelerator)
    trunk = trunk.to(device)
    task = cfg.eval
    loader = {"batch_size": cfg.loader.batch_size, "num_workers": cfg.loader.num_workers}
    dtype = getattr(torch, cfg.feature_dtype)
    metrics: dict[str, dict[str, float]] = {}
    for protocol in task.protocols:
        queries, gallery = eval_data.retrieval_sets(
            cfg.datasets,
            cfg.input,
            protocol,
            task.split,
            task.frames_per_video,
            task.keep_difficult,
        )
        log.info("%s retrieval: %d queries, %d gallery items", protocol, len(queries), len(gallery))
        metrics[protocol] = retrieval_topk(
            trunk, queries, gallery, device, ks=task.ks, storage_dtype=dtype, **loader
        )
    return metrics


def run_training(cfg: DictConfig, trunk: CaffeNetTrunk) -> dict[str, Any]:
    """Fine-tune or train the probes (``eval.kind``), then validate on the test set."""
    task = BUILDERS[cfg.eval.kind](cfg, trunk)
    workers = cfg.loader.num_workers
    batch_size = cfg.loader.batch_size
    train_loader = DataLoader(
        task.train_set,
        batch_size=batch_size,
        shuffle=True,
        # torch's Dataset declares no __len__; every transfer task's training set has one.
        drop_last=len(task.train_set) > batch_size,  # type: ignore[arg-type]
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=task.collate,
    )
    test_loader = DataLoader(
        task.test_set, batch_size=batch_size, num_workers=workers, collate_fn=task.collate
    )
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, logger=hydra.utils.instantiate(cfg.logger)
    )
    trainer.fit(task.model, train_loader, test_loader)
    trainer.validate(task.model, test_loader, verbose=False)
    # nn.Module types unknown attributes as Tensor | Module; every transfer model's
    # last_metrics is a dict[str, float].
    return dict(task.model.last_metrics)  # type: ignore[arg-type]
