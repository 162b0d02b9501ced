"""FCN semantic segmentation on the transferred trunk: conv5 → score layers → upsampling."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.fcn import FCN, FCNHead

from ssl_rl.eval.segmentation_iou import SegmentationIoU, iou_per_class, mean_iou
from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.optimization import trunk_and_new_groups, with_step_scheduler


class FCNSegmenter(pl.LightningModule):
    """torchvision's ``FCN``: the trunk up to conv5 as backbone, ``FCNHead`` (3×3 conv, BN,
    ReLU, dropout, 1×1 score conv; fresh) and bilinear upsampling to the input size. All of it
    is fine-tuned with per-pixel cross-entropy, ``ignore_index`` pixels left out.

    Validation batches are ``(inputs, label maps padded with ignore_index, (h, w) per map)``:
    each prediction is upsampled to its label map's own size, so IoU is measured at the
    original resolution. :attr:`last_metrics` holds ``miou`` and ``iou_per_class``.
    """

    def __init__(
        self,
        trunk: CaffeNetTrunk,
        class_names: Sequence[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        trunk_lr_scale: float = 1.0,
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["trunk", "optimizer", "scheduler"])
        self.class_names = list(class_names)
        backbone = IntermediateLayerGetter(trunk, return_layers={"conv5": "out"})
        self.net = FCN(backbone, FCNHead(trunk.out_channels, len(self.class_names)))
        self.ignore_index = ignore_index
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.trunk_lr_scale = trunk_lr_scale
        self.iou = SegmentationIoU(len(self.class_names), ignore_index)
        self.last_metrics: dict[str, Any] = {}

    def forward(self, images: Tensor) -> Tensor:
        """(B, num_classes, H, W) scores at the input's resolution."""
        out: Tensor = self.net(images)["out"]
        return out

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels, _ = batch
        loss = F.cross_entropy(self(images), labels, ignore_index=self.ignore_index)
        self.log("train/loss", loss, batch_size=len(images))
        return loss

    def on_validation_epoch_start(self) -> None:
        self.iou.reset()

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        images, labels, sizes = batch
        scores = self(images)
        for k, (height, width) in enumerate(sizes.tolist()):
            full = F.interpolate(
                scores[k : k + 1], size=(height, width), mode="bilinear", align_corners=False
            )
            self.iou.update(full.argmax(dim=1), labels[k : k + 1, :height, :width])

    def on_validation_epoch_end(self) -> None:
        per_class = self.iou.compute().double().cpu()
        self.last_metrics = {
            "miou": mean_iou(per_class),
            "iou_per_class": iou_per_class(per_class, self.class_names),
        }
        self.log("val/miou", self.last_metrics["miou"])

    def configure_optimizers(self) -> Any:
        groups = trunk_and_new_groups(
            self.net.classifier.parameters(),
            self.net.backbone.parameters(),
            self.optimizer_factory,
            self.trunk_lr_scale,
        )
        return with_step_scheduler(self.optimizer_factory(groups), self.scheduler_factory)
