"""Pascal VOC 2007 classification average precision, both variants (SPEC §3).

Targets use the VOC ``ImageSets/Main/<cls>_<split>.txt`` convention: 1 positive, -1 negative,
0 difficult (ignored: it neither helps nor hurts). Scores and targets are (N, C); the result is
one AP per class (float64, on the inputs' device), NaN for a class without positives.

- ``average_precision_stepwise``: area under the precision-recall step function, as computed by
  ``sklearn.metrics.average_precision_score`` (used by published VOC fine-tuning code). Tied
  scores form one threshold: every positive in a tie group gets the precision at the group's end.
- ``average_precision_voc07``: the VOC2007 devkit's ``VOCevalcls`` 11-point interpolated AP.
  Like the devkit's stable MATLAB ``sort(-out)``, tied scores are ranked by sample index and each
  sample is its own point (no grouping). Recall thresholds are exactly t = i/10 (the comparison
  ``recall >= t`` is done in integers), so a recall that equals t counts.

Own vectorised code rather than torchmetrics: torchmetrics' multilabel AP agrees with the
step-wise variant but returns 0 (with a warning) for a class without positives, which would
silently lower the mean, and it has no 11-point variant.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

log = logging.getLogger(__name__)

POSITIVE, DIFFICULT, NEGATIVE = 1, 0, -1
_NUM_RECALL_POINTS = 11


def _check_inputs(scores: Tensor, targets: Tensor) -> None:
    if scores.dim() != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"scores must have shape (N, C) with N, C >= 1, got {tuple(scores.shape)}")
    if targets.shape != scores.shape:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} differs from scores shape {tuple(scores.shape)}"
        )
    if not scores.is_floating_point() or not torch.isfinite(scores).all():
        raise ValueError("scores must be finite floating-point values")
    valid = (targets == POSITIVE) | (targets == DIFFICULT) | (targets == NEGATIVE)
    if not valid.all():
        bad = targets[~valid].unique()[:5].tolist()
        raise ValueError(
            f"targets must be 1 (positive), -1 (negative) or 0 (difficult); found {bad}"
        )


def _ranked_counts(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per class, samples ranked by score descending (ties by index): sorted scores, positive
    mask, cumulative true positives and cumulative false positives, each (N, C)."""
    order = scores.argsort(dim=0, descending=True, stable=True)
    ranked_targets = targets.gather(0, order)
    positive = ranked_targets == POSITIVE
    true_positives = positive.cumsum(dim=0)
    false_positives = (ranked_targets == NEGATIVE).cumsum(dim=0)
    return scores.gather(0, order), positive, true_positives, false_positives


def _nan_without_positives(total: Tensor, num_positives: Tensor) -> Tensor:
    nan = torch.full_like(total, float("nan"))
    return torch.where(num_positives > 0, total, nan)


def average_precision_stepwise(scores: Tensor, targets: Tensor) -> Tensor:
    """(C,) step-wise AP: mean over positives of the precision at their rank (sklearn's AP)."""
    _check_inputs(scores, targets)
    ranked_scores, positive, true_positives, false_positives = _ranked_counts(scores, targets)
    num_samples = scores.shape[0]
    # Index of the last sample of each sample's tie group: a reversed running minimum over the
    # group ends (every other position holds num_samples, larger than any end).
    is_group_end = torch.ones_like(positive)
    is_group_end[:-1] = ranked_scores[:-1] != ranked_scores[1:]
    positions = torch.arange(num_samples, device=scores.device)[:, None].expand_as(positive)
    end_marks = torch.where(is_group_end, positions, torch.full_like(positions, num_samples))
    group_end = end_marks.flip(0).cummin(dim=0).values.flip(0)
    tp_at_end = true_positives.gather(0, group_end).double()
    fp_at_end = false_positives.gather(0, group_end).double()
    # Where tp + fp == 0 no positive has been ranked yet, so that precision is never used.
    precision = tp_at_end / (tp_at_end + fp_at_end).clamp_min(1.0)
    num_positives = positive.sum(dim=0)
    total = (precision * positive).sum(dim=0) / num_positives.clamp_min(1)
    return _nan_without_positives(total, num_positives)


def average_precision_voc07(scores: Tensor, targets: Tensor) -> Tensor:
    """(C,) VOC2007 devkit 11-point AP: mean over t in {0, 0.1, ..., 1} of max precision at
    recall >= t (0 where recall never reaches t)."""
    _check_inputs(scores, targets)
    _, positive, true_positives, false_positives = _ranked_counts(scores, targets)
    ranked = (true_positives + false_positives).double()
    # The devkit's prec is NaN before the first non-difficult sample and MATLAB's max skips it;
    # 0 is equivalent there since later precisions are positive.
    precision = torch.where(ranked > 0, true_positives / ranked.clamp_min(1.0), 0.0)
    num_positives = positive.sum(dim=0)
    steps = torch.arange(_NUM_RECALL_POINTS, device=scores.device)[:, None, None]
    # recall >= i/10  <=>  10 * tp >= i * npos, exact in integers.
    reached = (_NUM_RECALL_POINTS - 1) * true_positives[None] >= steps * num_positives
    best = torch.where(reached, precision[None], 0.0).amax(dim=1)
    total = best.mean(dim=0)
    return _nan_without_positives(total, num_positives)


def mean_average_precision(average_precision: Tensor, warn: bool = True) -> float:
    """Mean over classes with positives (AP not NaN); warns naming the classes left out unless
    ``warn=False`` (see :class:`ExcludedClassesNotice`)."""
    if average_precision.dim() != 1 or average_precision.numel() == 0:
        raise ValueError(
            f"expected one AP per class, shape (C,), got {tuple(average_precision.shape)}"
        )
    missing = torch.isnan(average_precision)
    if missing.all():
        raise ValueError("no class has a positive sample: mean average precision is undefined")
    if missing.any() and warn:
        excluded = missing.nonzero().flatten().tolist()
        log.warning("mAP excludes classes %s: they have no positive samples", excluded)
    return float(average_precision[~missing].mean())


class ExcludedClassesNotice:
    """When a validating module lets :func:`mean_average_precision` warn: not in Lightning's
    sanity pass (its 2 batches always miss classes), and once per set of excluded classes
    (the same set at every validation of a run is one fact)."""

    def __init__(self) -> None:
        self._warned: list[int] | None = None

    def should_warn(self, average_precision: Tensor, sanity_checking: bool) -> bool:
        if sanity_checking:
            return False
        excluded = torch.isnan(average_precision).nonzero().flatten().tolist()
        if not excluded or excluded == self._warned:
            return False
        self._warned = excluded
        return True
