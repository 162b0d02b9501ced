"""VOC07 detection on the transferred trunk: torchvision's Faster R-CNN with Fast R-CNN's head."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign, roi_pool

from ssl_rl.eval.fc_head import fc_layers
from ssl_rl.eval.voc_ap import ExcludedClassesNotice, mean_average_precision
from ssl_rl.eval.voc_detection import continuous_to_voc
from ssl_rl.eval.voc_detection_ap import ImageDetections, ImageGroundTruth, voc_detection_ap
from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.optimization import trunk_and_new_groups, with_step_scheduler


class Conv5Backbone(nn.Module):
    """The trunk up to conv5 (pool5 is replaced by RoI pooling, as in Fast R-CNN)."""

    def __init__(self, trunk: CaffeNetTrunk) -> None:
        super().__init__()
        self.trunk = trunk
        self.out_channels = trunk.out_channels

    def forward(self, images: Tensor) -> Tensor:
        return self.trunk.forward_until(images, "conv5")


class RoIMaxPool(MultiScaleRoIAlign):  # type: ignore[misc]  # torchvision ships no types
    """Fast R-CNN's RoI max pooling on the one feature map at a fixed ``spatial_scale``.

    A :class:`MultiScaleRoIAlign` only in interface (FasterRCNN accepts no other type): the
    pooling is ``torchvision.ops.roi_pool``, not bilinear RoIAlign.
    """

    def __init__(self, output_size: int, spatial_scale: float) -> None:
        super().__init__(featmap_names=["0"], output_size=output_size, sampling_ratio=0)
        self.pool_size = output_size
        self.spatial_scale = spatial_scale

    def forward(
        self,
        x: dict[str, Tensor],
        boxes: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> Tensor:
        pooled: Tensor = roi_pool(x["0"], boxes, self.pool_size, self.spatial_scale)
        return pooled


def build_detector(
    trunk: CaffeNetTrunk,
    num_classes: int,
    anchor_sizes: Sequence[int],
    aspect_ratios: Sequence[float],
    roi_output_size: int = 6,
    roi_spatial_scale: float = 1 / 16,
    fc6_dim: int = 4096,
    fc7_dim: int = 4096,
    dropout: float = 0.5,
    **detector: Any,
) -> FasterRCNN:
    """Faster R-CNN with the trunk's conv5 as its single feature map, RoI max pooling and
    fresh fc6 / fc7 (with dropout) → class scores and box regression for ``num_classes``
    object classes plus background. ``detector``: FasterRCNN's own keyword arguments."""
    backbone = Conv5Backbone(trunk)
    pooled = backbone.out_channels * roi_output_size**2
    return FasterRCNN(
        backbone,
        rpn_anchor_generator=AnchorGenerator((tuple(anchor_sizes),), (tuple(aspect_ratios),)),
        box_roi_pool=RoIMaxPool(roi_output_size, roi_spatial_scale),
        box_head=fc_layers(pooled, fc6_dim, fc7_dim, dropout),
        box_predictor=FastRCNNPredictor(fc7_dim, num_classes + 1),
        # The dataset normalises (per image, as in pretraining): no second normalisation.
        image_mean=[0.0, 0.0, 0.0],
        image_std=[1.0, 1.0, 1.0],
        **detector,
    )


class DetectionFinetuner(pl.LightningModule):
    """Fine-tunes :func:`build_detector`'s model (trunk included); validation reports VOC mAP
    with the devkit's 11-point AP (``map_11pt``) and area under the curve (``map_auc``).

    Difficult objects are left out of the training targets (Fast R-CNN's default) and ignored
    in evaluation. Batches are ``(list of images, list of targets)``
    (:func:`~ssl_rl.eval.voc_detection.collate_detection`); labels are 1..num_classes.
    """

    def __init__(
        self,
        detector: FasterRCNN,
        class_names: Sequence[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        trunk_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.detector = detector
        self.class_names = list(class_names)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.trunk_lr_scale = trunk_lr_scale
        self._detections: list[ImageDetections] = []
        self._ground_truth: list[ImageGroundTruth] = []
        self.last_metrics: dict[str, Any] = {}
        self._excluded_notice = ExcludedClassesNotice()

    def training_step(self, batch: tuple[list[Tensor], list[dict[str, Tensor]]], _: int) -> Tensor:
        images, targets = batch
        kept = [
            {"boxes": t["boxes"][~t["difficult"]], "labels": t["labels"][~t["difficult"]]}
            for t in targets
        ]
        losses = self.detector(images, kept)
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=len(images))
        loss: Tensor = sum(losses.values())
        self.log("train/loss", loss, batch_size=len(images))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._detections, self._ground_truth = [], []

    def validation_step(self, batch: tuple[list[Tensor], list[dict[str, Tensor]]], _: int) -> None:
        images, targets = batch
        for found, target in zip(self.detector(images), targets, strict=True):
            self._detections.append(
                ImageDetections(
                    continuous_to_voc(found["boxes"]).cpu(),
                    found["scores"].cpu(),
                    found["labels"].cpu() - 1,
                )
            )
            self._ground_truth.append(
                ImageGroundTruth(
                    continuous_to_voc(target["boxes"]).cpu(),
                    target["labels"].cpu() - 1,
                    target["difficult"].cpu(),
                )
            )

    def on_validation_epoch_end(self) -> None:
        eleven, area = voc_detection_ap(self._detections, self._ground_truth, len(self.class_names))
        sanity = self._trainer is not None and self.trainer.sanity_checking
        warn = self._excluded_notice.should_warn(eleven, sanity)
        self.last_metrics = {
            "map_11pt": mean_average_precision(eleven, warn),
            "map_auc": mean_average_precision(area, warn=False),  # the same classes
            "ap_11pt_per_class": _named(eleven, self.class_names),
            "ap_auc_per_class": _named(area, self.class_names),
        }
        self.log("val/map_11pt", self.last_metrics["map_11pt"])
        self.log("val/map_auc", self.last_metrics["map_auc"])

    def configure_optimizers(self) -> Any:
        trunk = list(self.detector.backbone.parameters())
        trunk_ids = {id(p) for p in trunk}
        new = [p for p in self.detector.parameters() if id(p) not in trunk_ids]
        groups = trunk_and_new_groups(new, trunk, self.optimizer_factory, self.trunk_lr_scale)
        return with_step_scheduler(self.optimizer_factory(groups), self.scheduler_factory)


def _named(values: Tensor, names: Sequence[str]) -> dict[str, float | None]:
    """``{class name: AP}`` for summary.json (``None`` for a class without positives)."""
    return {n: None if math.isnan(v) else v for n, v in zip(names, values.tolist(), strict=True)}
