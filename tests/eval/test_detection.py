"""VOC07 detection: the devkit-format fixture through the dataset, the detector and its mAP."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from ssl_rl.data.readers.voc07 import VOC_CLASSES, VOC07Index
from ssl_rl.eval.fast_rcnn import DetectionFinetuner, build_detector
from ssl_rl.eval.voc_detection import (
    VOCDetectionDataset,
    collate_detection,
    continuous_to_voc,
    voc_to_continuous,
)
from ssl_rl.nets.caffenet import CaffeNetTrunk
from tests.fixtures.voc import make_voc_tree

SGD = functools.partial(torch.optim.SGD, lr=0.01)


def _label(name: str) -> int:
    return VOC_CLASSES.index(name) + 1  # torchvision: 0 is background


class FixedDetector(nn.Module):
    """Stands in for FasterRCNN: records training targets, returns given detections."""

    def __init__(self, outputs: list[dict[str, Tensor]]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.backbone = nn.Linear(1, 1)
        self.outputs = outputs
        self.seen_targets: list[dict[str, Tensor]] = []

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None) -> Any:
        if self.training:
            self.seen_targets += targets or []
            return {"loss_classifier": self.weight * 0 + 1.0, "loss_box_reg": self.weight * 0}
        return self.outputs[: len(images)]


def _detections(rows: list[tuple[str, tuple[int, int, int, int], float]]) -> dict[str, Tensor]:
    boxes = torch.tensor([box for _, box, _ in rows], dtype=torch.float32)
    return {
        "boxes": voc_to_continuous(boxes),
        "labels": torch.tensor([_label(name) for name, _, _ in rows]),
        "scores": torch.tensor([score for _, _, score in rows]),
    }


def test_box_conventions_round_trip() -> None:
    boxes = torch.tensor([[1.0, 1.0, 200.0, 150.0]])
    assert voc_to_continuous(boxes).tolist() == [[0.0, 0.0, 200.0, 150.0]]
    assert torch.equal(continuous_to_voc(voc_to_continuous(boxes)), boxes)


def test_dataset_flips_boxes_with_the_image(tmp_path: Path) -> None:
    dataset = VOCDetectionDataset(VOC07Index(make_voc_tree(tmp_path), "test"), train=True)
    torch.manual_seed(0)
    flipped = [dataset[1] for _ in range(8)]  # 000012: a tvmonitor at (50, 40, 149, 139)
    boxes = {tuple(target["boxes"][0].tolist()) for _, target in flipped}
    assert boxes == {(49.0, 39.0, 149.0, 139.0), (200 - 149.0, 39.0, 200 - 49.0, 139.0)}
    image, target = flipped[0]
    assert image.shape == (3, 150, 200) and target["labels"].tolist() == [_label("tvmonitor")]


def test_training_leaves_difficult_objects_out(tmp_path: Path) -> None:
    voc = make_voc_tree(tmp_path)
    train = VOCDetectionDataset(VOC07Index(voc, "train"), train=False)  # 000005
    detector = FixedDetector([])
    model = DetectionFinetuner(detector, VOC_CLASSES, SGD)
    model.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    loss = model.training_step(collate_detection([train[0]]), 0)
    assert loss.item() == pytest.approx(1.0)
    (seen,) = detector.seen_targets
    assert seen["labels"].tolist() == [_label("chair"), _label("chair")]  # not the person


def test_map_on_the_devkit_fixture_by_hand(tmp_path: Path) -> None:
    voc = make_voc_tree(tmp_path)
    test = VOCDetectionDataset(VOC07Index(voc, "test"), train=False)  # 000009, 000012
    outputs = [
        # 000009: the horse (1, 1, 200, 150) hit, a duplicate of it, the difficult bird.
        _detections(
            [
                ("horse", (1, 1, 200, 150), 0.9),
                ("horse", (1, 1, 200, 140), 0.8),
                ("bird", (30, 30, 80, 80), 0.95),
            ]
        ),
        # 000012: a tvmonitor half off its box (IoU 50·100 / 15000 = 1/3) before the real one,
        # and a horse where there is none.
        _detections(
            [
                ("tvmonitor", (100, 40, 199, 139), 0.7),
                ("tvmonitor", (50, 40, 149, 139), 0.6),
                ("horse", (1, 1, 40, 40), 0.85),
            ]
        ),
    ]
    model = DetectionFinetuner(FixedDetector(outputs), VOC_CLASSES, SGD)
    model.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    model.eval()
    model.on_validation_epoch_start()
    model.validation_step(collate_detection([test[0], test[1]]), 0)
    model.on_validation_epoch_end()
    metrics = model.last_metrics
    # horse (1 positive): 0.9 hit, 0.85 false (other image), 0.8 duplicate: precision 1 at
    # recall 1 → AP 1. tvmonitor: a miss, then the hit: precision 1/2 at recall 1 → AP 1/2.
    # bird and chair are only difficult (no positives: left out); the rest have no objects.
    assert metrics["ap_11pt_per_class"]["horse"] == pytest.approx(1.0)
    assert metrics["ap_11pt_per_class"]["tvmonitor"] == pytest.approx(0.5)
    assert metrics["ap_auc_per_class"]["tvmonitor"] == pytest.approx(0.5)
    assert metrics["ap_11pt_per_class"]["bird"] is None
    assert metrics["map_11pt"] == pytest.approx(0.75) and metrics["map_auc"] == pytest.approx(0.75)


def test_detector_on_conv5_trains_and_detects() -> None:
    torch.manual_seed(0)
    trunk = CaffeNetTrunk(width=0.125, conv1_stride=4)
    detector = build_detector(
        trunk, 20, (32, 64), (0.5, 1.0, 2.0), fc6_dim=16, fc7_dim=16, min_size=96, max_size=128
    )
    assert detector.backbone.trunk is trunk
    images = [torch.randn(3, 96, 128), torch.randn(3, 90, 120)]
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 60.0, 70.0]]), "labels": torch.tensor([3])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    losses = detector(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    sum(losses.values()).backward()
    assert trunk.conv1.conv.weight.grad is not None  # the trunk is fine-tuned
    detector.eval()
    with torch.no_grad():
        found = detector(images)
    assert len(found) == 2 and found[1]["boxes"].shape[1] == 4
    assert (found[1]["boxes"][:, 2] <= 120).all()  # boxes in the image's own coordinates
