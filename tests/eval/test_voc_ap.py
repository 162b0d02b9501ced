"""VOC07 classification AP: hand-computed values, ties, difficult samples, sklearn agreement."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
from torchmetrics.functional.classification import multilabel_average_precision

from ssl_rl.eval.voc_ap import (
    average_precision_stepwise,
    average_precision_voc07,
    mean_average_precision,
)

VARIANTS = [average_precision_stepwise, average_precision_voc07]


def _hand_example():
    # Class 0, ranked by score: + - + (difficult) - +   (3 positives; difficult ignored)
    # Class 1, tied scores:     0.9:+  then 0.5: - + + (in sample order)  0.0: - and a difficult
    # Class 2: no positives (only negatives and a difficult one).
    scores = torch.tensor(
        [
            [0.9, 0.9, 0.3],
            [0.8, 0.5, 0.2],
            [0.7, 0.5, 0.1],
            [0.6, 0.5, 0.4],
            [0.5, 0.0, 0.5],
            [0.4, 0.0, 0.6],
        ]
    )
    targets = torch.tensor(
        [[1, 1, -1], [-1, -1, -1], [1, 1, 0], [0, 1, -1], [-1, -1, -1], [1, 0, -1]]
    )
    return scores, targets


def test_stepwise_hand_computed():
    scores, targets = _hand_example()
    ap = average_precision_stepwise(scores, targets)
    # Class 0: precision at the positives' ranks 1, 3, 5 (the difficult sample skipped):
    #   (1/1 + 2/3 + 3/5) / 3 = 34/45. (Counting the difficult one as negative gives 13/18.)
    # Class 1: the tie group {0.5} is one threshold (tp=3, fp=1), so both tied positives get 3/4:
    #   (1 + 3/4 + 3/4) / 3 = 5/6. (Ranked by index: (1 + 2/3 + 3/4) / 3; positives first: 1.)
    torch.testing.assert_close(ap[:2], torch.tensor([34 / 45, 5 / 6], dtype=torch.float64))
    assert torch.isnan(ap[2])


def test_voc07_hand_computed():
    scores, targets = _hand_example()
    ap = average_precision_voc07(scores, targets)
    # Class 0 (rec, prec) points: (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2), (1, 3/5).
    #   t = 0, .1, .2, .3 → 1;  t = .4, .5, .6 → 2/3;  t = .7 … 1 → 3/5.
    #   (4·1 + 3·2/3 + 4·3/5) / 11 = 8.4 / 11.
    # Class 1: the tie is ranked by sample index (like MATLAB's stable sort): + - + + -, points
    #   (1/3, 1), (1/3, 1/2), (2/3, 2/3), (1, 3/4), (1, 3/5); t = 0 … .3 → 1, t = .4 … 1 → 3/4:
    #   (4 + 7·3/4) / 11 = 37/44. (Reversed tie order, + + + -, would give 1.)
    torch.testing.assert_close(ap[:2], torch.tensor([8.4 / 11, 37 / 44], dtype=torch.float64))
    assert torch.isnan(ap[2])


def test_voc07_recall_exactly_at_a_threshold_counts():
    # 10 positives ranked + + + - then 7 +: the third positive reaches recall 3/10 = t with
    # precision 1. All later precisions ≤ 10/11 (rising from 4/5 to 10/11, so 10/11 for t ≥ .4):
    #   (4·1 + 7·10/11) / 11 = 114/121. With t = 0.1·3 (0.30000000000000004, numpy.arange) the
    #   third positive would miss t = .3 and the result would be 113/121.
    targets = torch.tensor([1, 1, 1, -1] + [1] * 7)[:, None]
    scores = -torch.arange(11, dtype=torch.float32)[:, None]
    ap = average_precision_voc07(scores, targets)
    torch.testing.assert_close(ap, torch.tensor([114 / 121], dtype=torch.float64))


def _devkit_voc07(scores: np.ndarray, targets: np.ndarray) -> float:
    """Line-by-line transcription of VOCevalcls (VOC2007 devkit) for one class."""
    order = np.argsort(-scores, kind="stable")  # [so,si]=sort(-out)
    gt = targets[order]
    tp = np.cumsum(gt > 0)
    fp = np.cumsum(gt < 0)
    rec = tp / np.sum(targets > 0)
    with np.errstate(invalid="ignore"):
        prec = tp / (fp + tp)
    ap = 0.0
    for i in range(11):
        selected = prec[rec >= i / 10]
        selected = selected[~np.isnan(selected)]
        ap += (selected.max() if selected.size else 0.0) / 11
    return ap


def _random_case(seed: int, tied: bool):
    generator = torch.Generator().manual_seed(seed)
    shape = (80, 6)
    if tied:
        scores = torch.randint(0, 5, shape, generator=generator).float()
    else:
        scores = torch.randn(shape, generator=generator)
    targets = torch.randint(-1, 2, shape, generator=generator)
    targets[0] = 1  # every class has a positive
    return scores, targets


def _scikit_learn_ap(scores, targets):
    kept = targets != 0  # difficult samples removed
    return average_precision_score((targets[kept] == 1).numpy(), scores[kept].double().numpy())


def _devkit_ap(scores, targets):
    return _devkit_voc07(scores.numpy(), targets.numpy())


@pytest.mark.parametrize(
    ("average_precision", "reference"),
    [
        pytest.param(average_precision_stepwise, _scikit_learn_ap, id="stepwise-vs-scikit-learn"),
        pytest.param(average_precision_voc07, _devkit_ap, id="voc07-vs-devkit-transcription"),
    ],
)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_reference_implementation(average_precision, reference, seed, tied):
    scores, targets = _random_case(seed, tied)
    ap = average_precision(scores, targets)
    for c in range(scores.shape[1]):
        expected = reference(scores[:, c], targets[:, c])
        assert ap[c].item() == pytest.approx(expected, abs=1e-12)


def test_stepwise_agrees_with_torchmetrics_ignore_index():
    scores, targets = _random_case(2, tied=True)
    remapped = torch.where(targets == 0, -1, (targets == 1).long())  # difficult → ignore_index
    expected = multilabel_average_precision(
        scores, remapped, num_labels=scores.shape[1], average=None, ignore_index=-1
    )
    torch.testing.assert_close(average_precision_stepwise(scores, targets).float(), expected)


def test_mean_average_precision_skips_classes_without_positives(caplog):
    ap = torch.tensor([0.5, float("nan"), 0.7, float("nan")], dtype=torch.float64)
    with caplog.at_level("WARNING", logger="ssl_rl.eval.voc_ap"):
        assert mean_average_precision(ap) == pytest.approx(0.6)
    assert "[1, 3]" in caplog.text
    with pytest.raises(ValueError, match="no class has a positive"):
        mean_average_precision(torch.full((3,), float("nan")))


@pytest.mark.parametrize("variant", VARIANTS)
def test_bad_inputs_are_rejected(variant):
    scores, targets = _hand_example()
    with pytest.raises(ValueError, match="shape"):
        variant(scores[:, 0], targets[:, 0])
    with pytest.raises(ValueError, match="differs from scores shape"):
        variant(scores, targets[:, :2])
    with pytest.raises(ValueError, match=r"found \[2\]"):
        variant(scores, targets.index_fill(0, torch.tensor([1]), 2))
    with pytest.raises(ValueError, match="finite"):
        variant(scores.index_fill(0, torch.tensor([1]), float("nan")), targets)
