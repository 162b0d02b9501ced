"""Pascal VOC detection average precision, as the devkit's ``VOCevaldet`` computes it.

Boxes are (xmin, ymin, xmax, ymax) in the devkit's 1-based inclusive pixel convention, so an
overlap is ``iw = min(xmax) - max(xmin) + 1`` (and ``ih`` alike), areas ``(w + 1)(h + 1)``.
Per class, the detections of all images are ranked by score (descending; ties in input order,
like MATLAB's stable ``sort``). Each is matched to the ground-truth box of its image with the
largest overlap (the first of equal ones); if that overlap is at least ``iou_threshold`` (the
devkit's ``ovmax >= minoverlap``):

- the box is ``difficult``: the detection is ignored (neither true nor false positive);
- the box is not yet taken: a true positive, and the box is taken;
- the box is taken already (a duplicate detection): a false positive.

Otherwise it is a false positive. Recall divides by the number of non-difficult boxes.
Two AP variants: the VOC2007 devkit's 11-point interpolated AP (recall thresholds 0, 0.1, ...,
1 compared exactly, in integers) and the VOC2010+ devkit's area under the monotone
precision envelope (``VOCap``). A class without non-difficult boxes has AP NaN.

Own code rather than torchmetrics: its ``MeanAveragePrecision`` is COCO's 101-point AP over
several IoU thresholds (and needs pycocotools); neither devkit variant nor difficult-object
handling is available there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

_NUM_RECALL_POINTS = 11


@dataclass(frozen=True)
class ImageDetections:
    """One image's detections: boxes (K, 4) 1-based inclusive, scores (K,), labels (K,)."""

    boxes: Tensor
    scores: Tensor
    labels: Tensor


@dataclass(frozen=True)
class ImageGroundTruth:
    """One image's annotated objects: boxes (M, 4) 1-based inclusive, labels (M,), difficult
    (M,) bool."""

    boxes: Tensor
    labels: Tensor
    difficult: Tensor


def overlaps_voc(box: Tensor, boxes: Tensor) -> Tensor:
    """(M,) IoU of one box with ``boxes`` in the devkit's inclusive-pixel arithmetic."""
    box, boxes = box.double(), boxes.double()
    iw = (torch.minimum(box[2], boxes[:, 2]) - torch.maximum(box[0], boxes[:, 0]) + 1).clamp_min(0)
    ih = (torch.minimum(box[3], boxes[:, 3]) - torch.maximum(box[1], boxes[:, 1]) + 1).clamp_min(0)
    intersection = iw * ih
    area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    return intersection / (area + areas - intersection)


def match_class(
    detections: Sequence[ImageDetections],
    ground_truth: Sequence[ImageGroundTruth],
    label: int,
    iou_threshold: float = 0.5,
) -> tuple[Tensor, Tensor, int]:
    """True- and false-positive flags (R,) of the class's ranked detections (ignored ones
    dropped) and the number of its non-difficult boxes."""
    if len(detections) != len(ground_truth):
        raise ValueError(
            f"{len(detections)} images with detections but {len(ground_truth)} with annotations"
        )
    image_of, scores, boxes = [], [], []
    for image, found in enumerate(detections):
        keep = found.labels == label
        image_of += [image] * int(keep.sum())
        scores.append(found.scores[keep].double())
        boxes.append(found.boxes[keep].double())
    num_positives = sum(int(((gt.labels == label) & ~gt.difficult).sum()) for gt in ground_truth)
    if not image_of:
        return torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.bool), num_positives
    order = torch.cat(scores).argsort(descending=True, stable=True).tolist()
    all_boxes = torch.cat(boxes)
    taken = [torch.zeros(int((gt.labels == label).sum()), dtype=torch.bool) for gt in ground_truth]
    true_positive, false_positive = [], []
    for k in order:
        gt = ground_truth[image_of[k]]
        of_class = gt.labels == label
        if not of_class.any():
            true_positive.append(False)
            false_positive.append(True)
            continue
        overlaps = overlaps_voc(all_boxes[k], gt.boxes[of_class])
        best = int(overlaps.argmax())
        if overlaps[best] >= iou_threshold:
            if bool(gt.difficult[of_class][best]):
                continue  # a difficult object: the detection counts neither way
            duplicate = bool(taken[image_of[k]][best])
            taken[image_of[k]][best] = True
            true_positive.append(not duplicate)
            false_positive.append(duplicate)
        else:
            true_positive.append(False)
            false_positive.append(True)
    return torch.tensor(true_positive), torch.tensor(false_positive), num_positives


def ap_from_matches(
    true_positive: Tensor, false_positive: Tensor, num_positives: int
) -> tuple[float, float]:
    """(11-point AP, area-under-curve AP) of ranked TP / FP flags; NaN without positives."""
    if num_positives == 0:
        return float("nan"), float("nan")
    tp = true_positive.long().cumsum(0)
    fp = false_positive.long().cumsum(0)
    precision = tp.double() / (tp + fp).clamp_min(1).double()
    # 11-point: recall >= i/10  <=>  10 * tp >= i * npos, exact in integers.
    eleven = 0.0
    for i in range(_NUM_RECALL_POINTS):
        reached = (_NUM_RECALL_POINTS - 1) * tp >= i * num_positives
        eleven += float(precision[reached].max()) if reached.any() else 0.0
    eleven /= _NUM_RECALL_POINTS
    recall = torch.cat([torch.zeros(1), tp.double() / num_positives, torch.ones(1)]).double()
    envelope = torch.cat([torch.zeros(1), precision, torch.zeros(1)]).double()
    envelope = envelope.flip(0).cummax(0).values.flip(0)
    steps = recall[1:] != recall[:-1]
    area = float(((recall[1:] - recall[:-1]) * envelope[1:])[steps].sum())
    return eleven, area


def voc_detection_ap(
    detections: Sequence[ImageDetections],
    ground_truth: Sequence[ImageGroundTruth],
    num_classes: int,
    iou_threshold: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Per-class (11-point AP (C,), area-under-curve AP (C,)) for labels 0..num_classes-1."""
    results = [
        ap_from_matches(*match_class(detections, ground_truth, label, iou_threshold))
        for label in range(num_classes)
    ]
    eleven, area = zip(*results, strict=True)
    return torch.tensor(eleven, dtype=torch.float64), torch.tensor(area, dtype=torch.float64)
