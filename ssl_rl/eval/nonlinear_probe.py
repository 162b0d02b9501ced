"""ImageNet non-linear probe (Noroozi & Favaro): frozen conv1…conv5, fresh fc6–fc8 [paper]."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_rl.eval.fc_head import fc_classifier
from ssl_rl.eval.topk import topk_correct
from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.optimization import with_step_scheduler


class NonlinearProbe(pl.LightningModule):
    """Frozen trunk (eval mode: pretrained batch-norm statistics) → new fc6 → fc7 → fc8.

    Only the fully connected layers are trained (cross-entropy); validation reports top-k
    accuracy for every k in ``topk`` as ``top<k>`` in :attr:`last_metrics`.
    """

    def __init__(
        self,
        trunk: CaffeNetTrunk,
        num_classes: int,
        input_size: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        fc6_dim: int = 4096,
        fc7_dim: int = 4096,
        dropout: float = 0.5,
        topk: Sequence[int] = (1, 5),
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["trunk", "optimizer", "scheduler"])
        self.trunk = trunk.requires_grad_(False)
        self.head = fc_classifier(
            trunk.output_dim(input_size), num_classes, fc6_dim, fc7_dim, dropout
        )
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.topk = tuple(topk)
        self._correct: dict[int, Tensor] = {}
        self._count = 0
        self.last_metrics: dict[str, float] = {}

    def train(self, mode: bool = True) -> NonlinearProbe:
        super().train(mode)
        self.trunk.eval()  # frozen features: batch norm keeps its pretrained statistics
        return self

    def forward(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            features = self.trunk(images)
        logits: Tensor = self.head(features)
        return logits

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        loss = F.cross_entropy(self(images), labels)
        self.log("train/loss", loss, batch_size=len(images))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._correct = {k: torch.zeros((), device=self.device) for k in self.topk}
        self._count = 0

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)
        for k in self.topk:
            self._correct[k] += topk_correct(logits, labels, k).sum()
        self._count += len(labels)

    def on_validation_epoch_end(self) -> None:
        count = max(self._count, 1)
        self.last_metrics = {f"top{k}": self._correct[k].item() / count for k in self.topk}
        self.log_dict({f"val/{name}": value for name, value in self.last_metrics.items()})

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.head.parameters())
        return with_step_scheduler(optimizer, self.scheduler_factory)
