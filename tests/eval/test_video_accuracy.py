"""TSN-style video accuracy: hand-computed averages, probabilities vs logits, bad input."""

import pytest
import torch

from ssl_rl.eval.video_accuracy import average_by_video, video_accuracy


def _hand_example():
    # Frames given as log-probabilities, so their softmax is exactly these probabilities.
    #   video 0: [.9 .05 .05], [.02 .49 .49]       mean [.46 .27 .27]        → class 0
    #   video 1: [.2 .3 .5]                        mean [.2 .3 .5]           → class 2
    #   video 2: [.1 .8 .1], [.7 .2 .1], [.1 .7 .2] mean [.3 .5667 .1333]    → class 1
    # Mean log-probabilities instead: video 0 [(-0.105-3.912)/2, (-2.996-0.713)/2, same]
    #   = [-2.009, -1.854, -1.854] → class 1 (first of the tied maxima); videos 1, 2 unchanged.
    probabilities = torch.tensor(
        [
            [0.1, 0.8, 0.1],  # video 2
            [0.9, 0.05, 0.05],  # video 0
            [0.2, 0.3, 0.5],  # video 1
            [0.7, 0.2, 0.1],  # video 2
            [0.02, 0.49, 0.49],  # video 0
            [0.1, 0.7, 0.2],  # video 2
        ]
    )
    video_ids = torch.tensor([2, 0, 1, 2, 0, 2])
    video_labels = torch.tensor([0, 1, 1])
    return probabilities.log(), video_ids, video_labels


def test_average_by_video_hand_computed():
    logits, video_ids, _ = _hand_example()
    averaged = average_by_video(logits, video_ids, 3)
    expected = torch.tensor([[0.46, 0.27, 0.27], [0.2, 0.3, 0.5], [0.3, 1.7 / 3, 0.4 / 3]])
    torch.testing.assert_close(averaged, expected)


def test_video_accuracy_probabilities_and_logits():
    logits, video_ids, video_labels = _hand_example()
    # Probabilities: predictions [0, 2, 1] vs labels [0, 1, 1] → 2/3.
    assert video_accuracy(logits, video_ids, video_labels) == pytest.approx(2 / 3)
    # Logits: predictions [1, 2, 1] → only video 2 right → 1/3.
    assert video_accuracy(logits, video_ids, video_labels, average="logits") == pytest.approx(1 / 3)


def test_agrees_with_a_per_video_loop():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 7, generator=generator, dtype=torch.float64)
    video_ids = torch.randint(0, 25, (200,), generator=generator)
    video_ids[:25] = torch.arange(25)  # every video has a frame
    video_labels = torch.randint(0, 7, (25,), generator=generator)
    averaged = average_by_video(logits, video_ids, 25)
    assert averaged.dtype == torch.float64
    correct = 0
    for video in range(25):
        mean = logits[video_ids == video].softmax(dim=1).mean(dim=0)
        torch.testing.assert_close(averaged[video], mean)
        correct += int(mean.argmax() == video_labels[video])
    assert video_accuracy(logits, video_ids, video_labels) == pytest.approx(correct / 25)


def test_bad_inputs_are_rejected():
    logits, video_ids, _ = _hand_example()
    with pytest.raises(ValueError, match="1 of 4 videos have no frames"):
        average_by_video(logits, video_ids, 4)
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        average_by_video(logits, video_ids, 2)
    with pytest.raises(ValueError, match="one per frame"):
        average_by_video(logits, video_ids[:5], 3)
    with pytest.raises(ValueError, match="integer"):
        average_by_video(logits, video_ids.float(), 3)
    with pytest.raises(ValueError, match="finite"):
        average_by_video(logits.index_fill(0, torch.tensor([0]), float("nan")), video_ids, 3)
    with pytest.raises(ValueError, match="number of classes"):
        video_accuracy(logits, video_ids, torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="'probabilities' or 'logits'"):
        average_by_video(logits, video_ids, 3, average="mean")
