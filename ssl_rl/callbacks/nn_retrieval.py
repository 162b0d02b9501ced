"""Nearest-neighbour retrieval while pretraining: top-k over training steps (Fig. 5)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_only

from ssl_rl.callbacks.in_loop_evaluation import evaluation_in_training
from ssl_rl.eval.datasets import RetrievalSets, retrieval_sets
from ssl_rl.eval.nn_retrieval import retrieval_topk
from ssl_rl.eval.pretrained import transfer_trunk

log = logging.getLogger(__name__)


class NearestNeighbourMonitor(Callback):
    """Every ``every_n_steps`` (and at the start and end of training) the trunk's pool5
    nearest-neighbour top-k for each of ``protocols`` (``voc07``: test object crops against
    trainval crops, the paper's Fig. 5; ``ucf101``: test frames against training frames).

    ``datasets`` and ``input`` have the shape of finetune.yaml's. The trunk is copied with conv1
    stride ``conv1_stride`` (the transfer setting); the training trunk is untouched. Results go
    to the loggers as ``nn/<protocol>/top<k>``, to ``history`` (saved in checkpoints) and to
    ``output_file``. Runs on rank 0 only.
    """

    def __init__(
        self,
        every_n_steps: int,
        protocols: Sequence[str],
        datasets: Mapping[str, Any],
        input: Mapping[str, Any],
        conv1_stride: int = 4,
        split: int = 1,
        frames_per_video: int = 10,
        keep_difficult: bool = True,
        ks: Sequence[int] = (1, 5, 10, 20, 50),
        batch_size: int = 64,
        num_workers: int = 0,
        output_file: str | None = None,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.protocols = list(protocols)
        self.datasets = dict(datasets)
        self.input = {"normalization": "per_image", **input}
        self.conv1_stride = conv1_stride
        self.split = split
        self.frames_per_video = frames_per_video
        self.keep_difficult = keep_difficult
        self.ks = tuple(ks)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.output_file = Path(output_file) if output_file else None
        self.history: list[dict[str, Any]] = []
        self._sets: dict[str, RetrievalSets] = {}

    def _retrieval_sets(self, protocol: str) -> RetrievalSets:
        if protocol not in self._sets:
            self._sets[protocol] = retrieval_sets(
                self.datasets,
                self.input,
                protocol,
                self.split,
                self.frames_per_video,
                self.keep_difficult,
            )
        return self._sets[protocol]

    @rank_zero_only
    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = trainer.global_step
        if self.history and self.history[-1]["step"] == step:
            return
        with evaluation_in_training(trainer):
            self._evaluate(trainer, pl_module, step)

    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> None:
        trunk = transfer_trunk(pl_module.trunk, self.conv1_stride)  # type: ignore[arg-type]
        entry: dict[str, Any] = {"step": step}
        for protocol in self.protocols:
            queries, gallery = self._retrieval_sets(protocol)
            metrics = retrieval_topk(
                trunk,
                queries,
                gallery,
                pl_module.device,
                self.ks,
                batch_size=self.batch_size,
                num_workers=self.num_workers,
            )
            entry[protocol] = metrics
            for logger in trainer.loggers:
                logger.log_metrics({f"nn/{protocol}/{k}": v for k, v in metrics.items()}, step=step)
            log.info("step %d: NN retrieval %s %s", step, protocol, metrics)
        self.history.append(entry)
        if self.output_file is not None:
            self.output_file.parent.mkdir(parents=True, exist_ok=True)
            self.output_file.write_text(json.dumps(self.history, indent=1) + "\n")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == 0:
            self.evaluate(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.evaluate(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
