"""One builder per trained ``eval.kind``: the model and its train / test sets from the config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig
from torch.utils.data import Dataset

from ssl_rl.data.readers.voc07 import VOC_CLASSES
from ssl_rl.data.readers.voc12_seg import SEG_CLASSES
from ssl_rl.eval import datasets as eval_data
from ssl_rl.eval.classifier import TransferClassifier
from ssl_rl.eval.fast_rcnn import DetectionFinetuner, build_detector
from ssl_rl.eval.fcn import FCNSegmenter
from ssl_rl.eval.linear_probe import LinearProbes
from ssl_rl.eval.nonlinear_probe import NonlinearProbe
from ssl_rl.eval.voc_detection import collate_detection
from ssl_rl.eval.voc_segmentation import collate_segmentation
from ssl_rl.nets.caffenet import CaffeNetTrunk


@dataclass
class TransferTask:
    """What ``finetune.py`` trains and validates; ``collate`` None: the default collate."""

    model: pl.LightningModule
    train_set: Dataset[Any]
    test_set: Dataset[Any]
    collate: Callable[[list[Any]], Any] | None = None


def _optimizers(task: DictConfig) -> tuple[Any, Any]:
    optimizer = hydra.utils.instantiate(task.optimizer)
    scheduler = hydra.utils.instantiate(task.scheduler) if task.get("scheduler") else None
    return optimizer, scheduler


def voc07_cls(cfg: DictConfig, trunk: CaffeNetTrunk) -> TransferTask:
    """VOC07 multi-label classification (Krähenbühl et al.)."""
    optimizer, scheduler = _optimizers(cfg.eval)
    model = TransferClassifier(
        trunk,
        20,
        cfg.input.size,
        "multilabel",
        optimizer,
        scheduler,
        trunk_lr_scale=cfg.eval.trunk_lr_scale,
        **cfg.transfer_head,
    )
    return TransferTask(
        model,
        eval_data.voc07_images(cfg.datasets, "trainval", cfg.input, True),
        eval_data.voc07_images(cfg.datasets, "test", cfg.input, False),
    )


def action(cfg: DictConfig, trunk: CaffeNetTrunk) -> TransferTask:
    """UCF-101 / HMDB-51 single-frame fine-tuning, videos predicted from averaged frames."""
    task = cfg.eval
    optimizer, scheduler = _optimizers(task)
    train_set, classes = eval_data.video_frames(
        cfg.datasets, task.dataset, task.split, "train", cfg.input, "random"
    )
    test_set, _ = eval_data.video_frames(
        cfg.datasets, task.dataset, task.split, "test", cfg.input, "evenly", task.test_frames
    )
    model = TransferClassifier(
        trunk,
        len(classes),
        cfg.input.size,
        "video",
        optimizer,
        scheduler,
        trunk_lr_scale=task.trunk_lr_scale,
        **cfg.transfer_head,
    )
    return TransferTask(model, train_set, test_set)


def _imagenet_probe(
    cfg: DictConfig,
    trunk: CaffeNetTrunk,
    probe: Callable[..., pl.LightningModule],
    **options: Any,
) -> TransferTask:
    """``probe`` (trunk, classes, input size, optimizer, scheduler, **options) on ImageNet."""
    optimizer, scheduler = _optimizers(cfg.eval)
    train_set, test_set, classes = eval_data.imagenet_images(cfg.datasets, cfg.input)
    model = probe(trunk, len(classes), cfg.input.size, optimizer, scheduler, **options)
    return TransferTask(model, train_set, test_set)


def linear_probe(cfg: DictConfig, trunk: CaffeNetTrunk) -> TransferTask:
    """ImageNet linear probes on conv1…conv5 (Zhang et al.)."""
    return _imagenet_probe(
        cfg, trunk, LinearProbes, layers=cfg.eval.layers, target_dim=cfg.eval.target_dim
    )


def nonlinear_probe(cfg: DictConfig, trunk: CaffeNetTrunk) -> TransferTask:
    """ImageNet non-linear probe: frozen conv1…conv5, fresh fc6–fc8 (Noroozi & Favaro)."""
    return _imagenet_probe(cfg, trunk, NonlinearProbe, topk=cfg.eval.topk, **cfg.transfer_head)


def voc07_det(cfg: DictConfig, trunk: CaffeNetTrunk) -> TransferTask:
    """VOC07 detection (Fast R-CNN settings on torchvision's Faster R-CNN), trainval → test."""
    task = cfg.eval
    optimizer, scheduler = _optimizers(task)
    detector = build_detector(
        trunk,
        len(VOC_CLASSES),
        task.anchor_sizes,
        task.aspect_ratios,
        task.roi_output_size,
        task.roi_spatial_scale,
        **cfg.transfer_head,
        **task.detector,
    )
    model = DetectionFinetuner(
        detector, VOC_CLASSES, optimizer, scheduler, trunk_lr_scale=task.trunk_lr_scale
    )
    return TransferTask(
        model,
        eval_data.voc07_detection(cfg.datasets, "trainval", cfg.input, True),
        eval_data.voc07_detection(cfg.datasets, "test", cfg.input, False),
        collate_detection,
    )


def voc12_seg(cfg: DictConfig, trunk: CaffeNetTrunk) -> TransferTask:
    """VOC 2012 segmentation with an FCN on conv5 (train → val), mIoU over 21 classes."""
    task = cfg.eval
    optimizer, scheduler = _optimizers(task)
    model = FCNSegmenter(
        trunk, SEG_CLASSES, optimizer, scheduler, trunk_lr_scale=task.trunk_lr_scale
    )
    return TransferTask(
        model,
        eval_data.voc12_segmentation(cfg.datasets, task.train_split, cfg.input, True),
        eval_data.voc12_segmentation(cfg.datasets, task.test_split, cfg.input, False),
        collate_segmentation,
    )


BUILDERS: dict[str, Callable[[DictConfig, CaffeNetTrunk], TransferTask]] = {
    "voc07_cls": voc07_cls,
    "action": action,
    "linear_probe": linear_probe,
    "nonlinear_probe": nonlinear_probe,
    "voc12_seg": voc12_seg,
    "voc07_det": voc07_det,
}
