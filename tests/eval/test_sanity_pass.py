"""Lightning's sanity pass (2 batches before training) reports no classes missing from mAP:
a few batches always miss some. The full validations still do, once per set of classes."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ssl_rl.data.readers.voc07 import VOC_CLASSES, VOC07Index
from ssl_rl.eval.classifier import TransferClassifier
from ssl_rl.eval.fast_rcnn import DetectionFinetuner
from ssl_rl.eval.voc_detection import VOCDetectionDataset, collate_detection
from ssl_rl.nets.caffenet import CaffeNetTrunk
from tests.eval.test_detection import FixedDetector
from tests.fixtures.voc import make_voc_tree

SGD = functools.partial(torch.optim.SGD, lr=0.01)


def _fit_one_step_and_validate(
    model: pl.LightningModule, train: DataLoader, val: DataLoader
) -> None:
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        num_sanity_val_steps=2,  # Lightning's default, as the fine-tuning protocols run it
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, train, val)
    trainer.validate(model, val, verbose=False)  # the same classes missing: not warned again


def _excluded(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "mAP excludes" in r.getMessage()]


def test_classification_warns_only_for_classes_missing_from_the_whole_test_set(caplog) -> None:
    torch.manual_seed(0)
    trunk = CaffeNetTrunk(width=0.125, conv1_stride=4)
    model = TransferClassifier(trunk, 4, 64, "multilabel", SGD, fc6_dim=16, fc7_dim=16)
    images = torch.randn(6, 3, 64, 64)
    targets = -torch.ones(6, 4, dtype=torch.long)
    targets[:, 0] = 1
    targets[:2, 1] = 1
    targets[5, 2] = 1  # class 2 only after the sanity pass's 2 batches of 2; class 3 never
    val = DataLoader(TensorDataset(images, targets), batch_size=2)
    train = DataLoader(TensorDataset(images[:2], targets[:2]), batch_size=2)
    with caplog.at_level(logging.WARNING, logger="ssl_rl.eval.voc_ap"):
        _fit_one_step_and_validate(model, train, val)
    assert _excluded(caplog) == ["mAP excludes classes [3]: they have no positive samples"]


def test_detection_warns_only_for_classes_missing_from_the_whole_test_set(
    tmp_path: Path, caplog
) -> None:
    test = VOCDetectionDataset(VOC07Index(make_voc_tree(tmp_path), "test"), train=False)
    nothing = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}
    model = DetectionFinetuner(
        FixedDetector([{**nothing, "scores": torch.zeros(0)}]), VOC_CLASSES, SGD
    )
    loader = functools.partial(DataLoader, test, collate_fn=collate_detection)
    with caplog.at_level(logging.WARNING, logger="ssl_rl.eval.voc_ap"):
        # Sanity pass: 000009 only (no tvmonitor); validation: 000009 and 000012.
        _fit_one_step_and_validate(model, loader(batch_size=2), loader(batch_size=1))
    with_objects = {VOC_CLASSES.index("horse"), VOC_CLASSES.index("tvmonitor")}
    missing = [c for c in range(len(VOC_CLASSES)) if c not in with_objects]
    assert _excluded(caplog) == [f"mAP excludes classes {missing}: they have no positive samples"]
