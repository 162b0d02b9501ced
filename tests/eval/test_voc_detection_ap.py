"""VOC detection AP (devkit VOCevaldet) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from ssl_rl.eval.voc_detection_ap import (
    ImageDetections,
    ImageGroundTruth,
    ap_from_matches,
    match_class,
    overlaps_voc,
    voc_detection_ap,
)


def _boxes(*rows: tuple[int, int, int, int]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def test_overlap_uses_inclusive_pixels() -> None:
    # 10×10 boxes shifted by 5 px: intersection 5·10 = 50, union 150.
    iou = overlaps_voc(_boxes((1, 1, 10, 10))[0], _boxes((6, 1, 15, 10), (11, 11, 20, 20)))
    assert iou.tolist() == pytest.approx([1 / 3, 0.0])


@pytest.fixture
def case() -> tuple[list[ImageDetections], list[ImageGroundTruth]]:
    ground_truth = [
        # Image A: an aeroplane (0) and a difficult aeroplane.
        ImageGroundTruth(
            _boxes((1, 1, 10, 10), (21, 21, 30, 30)),
            torch.tensor([0, 0]),
            torch.tensor([False, True]),
        ),
        # Image B: an aeroplane and a bicycle (1).
        ImageGroundTruth(
            _boxes((1, 1, 10, 10), (41, 41, 50, 50)),
            torch.tensor([0, 1]),
            torch.tensor([False, False]),
        ),
    ]
    detections = [
        ImageDetections(
            _boxes((1, 1, 10, 10), (2, 1, 10, 10), (21, 21, 30, 30)),
            torch.tensor([0.9, 0.8, 0.7]),  # hit, duplicate of the same box, the difficult one
            torch.tensor([0, 0, 0]),
        ),
        ImageDetections(
            # aeroplane on the bicycle (miss), the aeroplane (IoU 0.9), the bicycle at IoU 0.5
            # exactly (a hit: the devkit's >=), a bird (2) where no bird is.
            _boxes((41, 41, 50, 50), (1, 1, 10, 9), (41, 41, 50, 45), (1, 1, 5, 5)),
            torch.tensor([0.6, 0.5, 0.4, 0.3]),
            torch.tensor([0, 0, 1, 2]),
        ),
    ]
    return detections, ground_truth


def test_matching_ignores_difficult_and_counts_duplicates_as_false(case) -> None:
    detections, ground_truth = case
    tp, fp, num_positives = match_class(detections, ground_truth, 0)
    # Ranked 0.9 hit, 0.8 duplicate, (0.7 difficult: dropped), 0.6 miss, 0.5 hit.
    assert tp.tolist() == [True, False, False, True]
    assert fp.tolist() == [False, True, True, False]
    assert num_positives == 2  # the difficult aeroplane does not count


def test_ap_by_hand(case) -> None:
    detections, ground_truth = case
    eleven, area = voc_detection_ap(detections, ground_truth, num_classes=4)
    # Aeroplane: precision 1, 1/2, 1/3, 1/2 at recall 1/2, 1/2, 1/2, 1.
    #   11-point: t = 0 … 0.5 → 1 (6 points), t = 0.6 … 1 → 1/2 (5 points): 8.5 / 11.
    #   Area: envelope 1 up to recall 1/2, then 1/2: 0.5 · 1 + 0.5 · 0.5 = 0.75.
    assert eleven[0].item() == pytest.approx(8.5 / 11)
    assert area[0].item() == pytest.approx(0.75)
    # Bicycle: one detection at IoU exactly 0.5 → AP 1; bird and class 3: no positives → NaN.
    assert eleven[1].item() == pytest.approx(1.0) and area[1].item() == pytest.approx(1.0)
    assert math.isnan(eleven[2]) and math.isnan(area[3])


def test_no_detections_gives_zero_ap_and_sorting_is_stable() -> None:
    assert ap_from_matches(
        torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.bool), 3
    ) == (0.0, 0.0)
    # Equal scores keep input order: a miss ranked before the hit halves the precision.
    gt = [ImageGroundTruth(_boxes((1, 1, 10, 10)), torch.tensor([0]), torch.tensor([False]))]
    found = [
        ImageDetections(
            _boxes((50, 50, 60, 60), (1, 1, 10, 10)), torch.tensor([0.5, 0.5]), torch.tensor([0, 0])
        )
    ]
    eleven, area = voc_detection_ap(found, gt, 1)
    assert eleven.item() == pytest.approx(0.5) and area.item() == pytest.approx(0.5)
