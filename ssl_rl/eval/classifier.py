"""Fine-tuning a pretrained trunk + fc6/fc7/fc8 on a labelled task (VOC07, UCF-101, HMDB-51)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_rl.eval.fc_head import fc_classifier
from ssl_rl.eval.voc_ap import (
    ExcludedClassesNotice,
    average_precision_stepwise,
    average_precision_voc07,
    mean_average_precision,
)
from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.optimization import trunk_and_new_groups, with_step_scheduler

log = logging.getLogger(__name__)

Objective = Literal["multilabel", "video"]


class TransferClassifier(pl.LightningModule):
    """Trunk (pretrained or random) → fc6 → fc7 → fc(num_classes), all fine-tuned.

    ``objective="multilabel"`` (VOC07, Krähenbühl et al.): targets (B, C) in {1, −1, 0}; sigmoid
    cross-entropy on the ±1 entries, 0 (only difficult instances) ignored [paper]; validation
    reports mAP both step-wise and as the devkit's 11-point AP. ``objective="video"`` (UCF-101,
    HMDB-51): training on single frames (B, 3, h, w) with cross-entropy; validation items are
    the frames of one video (B, F, 3, h, w) whose softmax outputs are averaged (TSN) [paper].
    ``trunk_lr_scale`` scales the trunk's learning rate relative to the new layers.
    """

    def __init__(
        self,
        trunk: CaffeNetTrunk,
        num_classes: int,
        input_size: int,
        objective: Objective,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        fc6_dim: int = 4096,
        fc7_dim: int = 4096,
        dropout: float = 0.5,
        trunk_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if objective not in ("multilabel", "video"):
            raise ValueError(f"objective must be 'multilabel' or 'video', got {objective!r}")
        self.save_hyperparameters(ignore=["trunk", "optimizer", "scheduler"])
        self.trunk = trunk
        self.objective = objective
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.trunk_lr_scale = trunk_lr_scale
        self.head = fc_classifier(
            trunk.output_dim(input_size), num_classes, fc6_dim, fc7_dim, dropout
        )
        self._val_scores: list[Tensor] = []
        self._val_targets: list[Tensor] = []
        # The metrics of the last validation, for summary.json.
        self.last_metrics: dict[str, float] = {}
        self._excluded_notice = ExcludedClassesNotice()

    def forward(self, images: Tensor) -> Tensor:
        logits: Tensor = self.head(self.trunk(images))
        return logits

    def _loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        if self.objective == "video":
            return F.cross_entropy(logits, targets)
        known = targets != 0
        if not known.any():
            return logits.sum() * 0.0
        return F.binary_cross_entropy_with_logits(logits[known], (targets[known] > 0).float())

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, targets = batch
        loss = self._loss(self(images), targets)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(images))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        inputs, targets = batch
        if self.objective == "video":
            b, f = inputs.shape[:2]
            logits = self(inputs.flatten(0, 1)).view(b, f, -1)
            scores = logits.softmax(dim=-1).mean(dim=1)
        else:
            scores = self(inputs)
        self._val_scores.append(scores.float())
        self._val_targets.append(targets)

    def on_validation_epoch_start(self) -> None:
        self._val_scores, self._val_targets = [], []

    def on_validation_epoch_end(self) -> None:
        gathered_scores = self.all_gather(torch.cat(self._val_scores))
        targets = self.all_gather(torch.cat(self._val_targets))
        # all_gather returns what it was given: here tensors.
        assert isinstance(gathered_scores, Tensor) and isinstance(targets, Tensor)
        scores = gathered_scores.flatten(0, -2)
        targets = targets.flatten(0, -2) if self.objective == "multilabel" else targets.flatten()
        if self.objective == "video":
            metrics = {"val/video_acc": (scores.argmax(dim=1) == targets).float().mean().item()}
        else:
            stepwise = average_precision_stepwise(scores, targets)
            voc07 = average_precision_voc07(scores, targets)
            sanity = self._trainer is not None and self.trainer.sanity_checking
            warn = self._excluded_notice.should_warn(stepwise, sanity)
            metrics = {
                "val/mAP": mean_average_precision(stepwise, warn),
                "val/mAP_voc07": mean_average_precision(voc07, warn=False),  # the same classes
            }
        self.last_metrics = metrics
        self.log_dict(metrics, sync_dist=False, rank_zero_only=True)

    def configure_optimizers(self) -> Any:
        groups = trunk_and_new_groups(
            self.head.parameters(),
            self.trunk.parameters(),
            self.optimizer_factory,
            self.trunk_lr_scale,
        )
        return with_step_scheduler(self.optimizer_factory(groups), self.scheduler_factory)
