"""Hand-computed checks of the state s (Eq. 3-4), error E (Eq. 6), reward (Eq. 7) and ŝ (Eq. 10)."""

import pytest
import torch

from ssl_rl.policy import (
    error_rate,
    extrapolated_baseline,
    extrapolated_reward,
    group_medians,
    group_state,
    per_permutation_error,
    ratio_matrix,
    ratio_matrix_from_logits,
    softmax_ratio,
    sort_groups_by_median,
)

# probs[v, i]: softmax for validation sample v permuted by ψ_i (true class i); V = 2, |Ψ| = 3.
PROBS = torch.tensor(
    [
        [
            [0.7, 0.2, 0.1],  # correct: (0.7 + 1) / (0.2 + 1)
            [0.5, 0.3, 0.2],  # misclassified as 0: (0.3 + 1) / (0.5 + 1)
            [0.1, 0.3, 0.6],  # correct: (0.6 + 1) / (0.3 + 1)
        ],
        [
            [0.4, 0.4, 0.2],  # tie between the true class and class 1: ratio exactly 1
            [0.1, 0.8, 0.1],  # correct: (0.8 + 1) / (0.1 + 1)
            [0.25, 0.25, 0.5],  # correct: (0.5 + 1) / (0.25 + 1)
        ],
    ]
)
EXPECTED_S = torch.tensor(
    [
        [1.7 / 1.2, 1.0],
        [1.3 / 1.5, 1.8 / 1.1],
        [1.6 / 1.3, 1.5 / 1.25],
    ]
)


def test_ratio_matrix_matches_hand_computed_values():
    s = ratio_matrix(PROBS)
    assert s.shape == (3, 2)  # (|Ψ|, |X_val|): row i belongs to ψ_i
    torch.testing.assert_close(s, EXPECTED_S)
    assert s[0, 1].item() == 1.0  # the tie


def test_error_counts_misclassified_and_tied_pairs():
    s = ratio_matrix(PROBS)
    assert error_rate(s).item() == pytest.approx(2 / 6)
    torch.testing.assert_close(per_permutation_error(s), torch.tensor([0.5, 0.5, 0.0]))


def test_ratio_from_logits_equals_ratio_from_softmax():
    logits = torch.log(PROBS) + 3.0  # a shift does not change the softmax
    torch.testing.assert_close(ratio_matrix_from_logits(logits), EXPECTED_S)


def test_ratio_bounds_and_correctness_criterion_on_random_outputs():
    generator = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(7, 12, 12, generator=generator)
    s = ratio_matrix_from_logits(logits)
    assert bool((s >= 0.5).all()) and bool((s <= 2.0).all())
    argmax_is_true = logits.argmax(dim=-1) == torch.arange(12)  # (V, Q)
    assert torch.equal(s > 1, argmax_is_true.T)
    assert error_rate(s).item() == pytest.approx(1 - argmax_is_true.float().mean().item())


def test_softmax_ratio_for_a_flat_batch():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.1, 0.6, 0.3]])
    ratios = softmax_ratio(probs, torch.tensor([1, 2]))
    torch.testing.assert_close(ratios, torch.tensor([1.6 / 1.3, 1.3 / 1.6]))


def test_ratio_rejects_logits_and_wrong_shapes():
    with pytest.raises(ValueError, match="ratio_matrix_from_logits"):
        ratio_matrix(torch.randn(2, 3, 3))
    with pytest.raises(ValueError, match=r"\(\|X_val\|, \|Ψ\|, \|Ψ\|\)"):
        ratio_matrix(torch.full((2, 3, 4), 0.25))
    with pytest.raises(ValueError, match="2-D"):
        error_rate(torch.ones(3))


def test_reward_first_episode_uses_current_error_as_baseline():
    assert extrapolated_baseline(0.8) == pytest.approx(0.8)
    assert extrapolated_reward([0.8], 0.7) == pytest.approx(0.1)


def test_reward_extrapolates_the_last_two_errors():
    # E_{t-1} = 0.9, E_t = 0.8 -> E^BL_{t+1} = 0.7; E_{t+1} = 0.75 -> r_t = -0.05.
    assert extrapolated_baseline(0.8, 0.9) == pytest.approx(0.7)
    assert extrapolated_reward([0.9, 0.8], 0.75) == pytest.approx(-0.05)
    assert extrapolated_reward([0.1, 0.9, 0.8], 0.75) == pytest.approx(-0.05)
    assert extrapolated_reward(torch.tensor([0.9, 0.8]), torch.tensor(0.6)) == pytest.approx(0.1)


def test_reward_needs_the_current_error():
    with pytest.raises(ValueError, match="E_t"):
        extrapolated_reward([], 0.5)


# Five permutations, two validation samples, four k-means labels with label 1 empty.
GROUP_S = torch.tensor([[0.6, 0.8], [1.5, 1.9], [0.7, 0.9], [1.2, 1.4], [1.6, 2.0]])
GROUP_LABELS = torch.tensor([2, 0, 2, 3, 0])


def test_group_medians_over_all_entries_of_the_rows():
    counts, medians = group_medians(GROUP_S, GROUP_LABELS, 4)
    assert counts.tolist() == [2, 0, 2, 1]
    # label 0: {1.5, 1.9, 1.6, 2.0} -> (1.6 + 1.9) / 2; label 2: {0.6, 0.8, 0.7, 0.9} -> 0.75
    torch.testing.assert_close(medians, torch.tensor([1.75, 0.0, 0.75, 1.3]))


def test_groups_sorted_hardest_first_with_empty_groups_last():
    labels = sort_groups_by_median(GROUP_S, GROUP_LABELS, 4)
    # old 2 (0.75) -> 0, old 3 (1.3) -> 1, old 0 (1.75) -> 2, old 1 (empty) -> 3
    assert labels.tolist() == [0, 2, 0, 1, 2]


def test_group_state_raw_and_normalised_counts():
    labels = sort_groups_by_median(GROUP_S, GROUP_LABELS, 4)
    raw = group_state(GROUP_S, labels, 4, normalize_counts=False)
    expected = torch.tensor([[2.0, 0.75], [1.0, 1.3], [2.0, 1.75], [0.0, 0.0]])
    torch.testing.assert_close(raw, expected)
    normalised = group_state(GROUP_S, labels, 4)
    torch.testing.assert_close(normalised[:, 0], torch.tensor([0.4, 0.2, 0.4, 0.0]))
    torch.testing.assert_close(normalised[:, 1], expected[:, 1])


def test_group_functions_reject_bad_labels():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        group_state(GROUP_S, GROUP_LABELS, 3)
    with pytest.raises(ValueError, match="long tensor"):
        group_state(GROUP_S, GROUP_LABELS.float(), 4)


def test_baseline_extrapolates_the_trend_over_the_episode_length() -> None:
    from ssl_rl.policy.reward import extrapolated_baseline, extrapolated_reward

    # Error fell 0.10 over 100 steps; over a 10-step episode the trend predicts 0.01 more.
    assert extrapolated_baseline(0.5, 0.6, span_ratio=0.1) == pytest.approx(0.49)
    assert extrapolated_reward([0.6, 0.5], 0.47, span_ratio=0.1) == pytest.approx(0.02)
    # Equal spans: the paper's 2 E_t - E_{t-1}.
    assert extrapolated_baseline(0.5, 0.6) == pytest.approx(0.4)
