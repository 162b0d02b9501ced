"""Per-class intersection over union of label maps (torchmetrics) and the VOC mean IoU."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassJaccardIndex


class SegmentationIoU(MulticlassJaccardIndex):
    """Accumulated per-class IoU over all pixels of all images (the devkit's definition:
    TP / (TP + FP + FN) summed over the data set), ``ignore_index`` pixels left out.

    A class with an empty union (absent from the labels and never predicted) has no IoU: NaN,
    left out of :func:`mean_iou`, ``None`` in :func:`iou_per_class`. A class absent from the
    labels but predicted somewhere gets IoU 0.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        super().__init__(
            num_classes, average="none", ignore_index=ignore_index, zero_division=math.nan
        )


def mean_iou(per_class: Tensor) -> float:
    """Mean over the classes that have an IoU (not NaN)."""
    valid = ~torch.isnan(per_class)
    if not valid.any():
        raise ValueError("no class occurs in the labels or predictions: mean IoU is undefined")
    return float(per_class[valid].mean())


def iou_per_class(per_class: Tensor, names: Sequence[str]) -> dict[str, float | None]:
    """``{class name: IoU}`` for summary.json (``None`` for a class without one)."""
    return {
        name: None if math.isnan(value) else value
        for name, value in zip(names, per_class.tolist(), strict=True)
    }
