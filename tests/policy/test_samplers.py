"""Permutation samplers: distributions, group handling, recorded actions, resume, device."""

import io
import logging

import pytest
import torch

from ssl_rl.policy import (
    ErrorProportionalSampler,
    GroupPolicySampler,
    PermutationSampler,
    UniformSampler,
)

# 30 permutations in 3 groups of sizes 10, 15, 5 (interleaved, as k-means labels would be).
LABELS = torch.tensor([0, 1, 2] * 5 + [0, 1] * 5 + [1] * 5)


def _policy_sampler(seed: int = 0) -> GroupPolicySampler:
    sampler = GroupPolicySampler(30, num_groups=3, seed=seed)
    sampler.set_groups(LABELS)
    return sampler


def test_all_samplers_follow_the_protocol():
    for sampler in (UniformSampler(5), GroupPolicySampler(5, 2), ErrorProportionalSampler(5)):
        assert isinstance(sampler, PermutationSampler)
        drawn = sampler.draw(7, torch.device("cpu"))
        assert drawn.dtype == torch.long and drawn.shape == (7,)
        assert sampler.draw(0, "cpu").shape == (0,)


def test_uniform_sampler_covers_all_permutations_evenly():
    drawn = UniformSampler(20, seed=3).draw(20_000, "cpu")
    counts = torch.bincount(drawn, minlength=20).double()
    chi_square = ((counts - 1000) ** 2 / 1000).sum().item()
    assert drawn.min() >= 0 and drawn.max() < 20
    assert chi_square < 50  # 99.9 % quantile for 19 degrees of freedom is 43.8


def test_policy_sampler_matches_group_probabilities_and_records_actions():
    sampler = _policy_sampler()
    probs = torch.tensor([0.2, 0.5, 0.3])
    sampler.set_group_probs(probs)
    drawn = sampler.draw(30_000, "cpu")
    actions = sampler.pop_actions()
    assert torch.equal(LABELS[drawn], actions)  # each permutation comes from its drawn group
    frequencies = torch.bincount(actions, minlength=3).double() / 30_000
    torch.testing.assert_close(frequencies, probs.double(), atol=0.01, rtol=0)
    # Uniform within a group: each member gets p_group / size_group.
    per_perm = torch.bincount(drawn, minlength=30).double() / 30_000
    expected = probs.double()[LABELS] / torch.bincount(LABELS).double()[LABELS]
    torch.testing.assert_close(per_perm, expected, atol=0.006, rtol=0)
    assert sampler.pop_actions().numel() == 0  # popped actions are forgotten


def test_policy_sampler_draws_only_inside_the_chosen_group():
    sampler = _policy_sampler()
    sampler.set_group_probs(torch.tensor([0.0, 1.0, 0.0]))
    drawn = sampler.draw(500, "cpu")
    assert set(LABELS[drawn].tolist()) == {1}
    assert set(drawn.tolist()) == set((LABELS == 1).nonzero().squeeze(1).tolist())


def test_empty_groups_get_no_probability():
    labels = torch.tensor([0, 1, 0, 1, 0, 3, 3, 1])  # group 2 is empty
    sampler = GroupPolicySampler(8, num_groups=4, seed=1)
    sampler.set_groups(labels)
    sampler.set_group_probs(torch.tensor([0.25, 0.25, 0.25, 0.25]))
    sampler.draw(9_000, "cpu")
    frequencies = torch.bincount(sampler.pop_actions(), minlength=4).double() / 9_000
    torch.testing.assert_close(
        frequencies, torch.tensor([1 / 3, 1 / 3, 0, 1 / 3]).double(), atol=0.02, rtol=0
    )
    assert frequencies[2] == 0


def test_all_mass_on_empty_groups_falls_back_to_uniform_with_a_warning(caplog):
    labels = torch.tensor([0, 1, 0, 1, 0, 1])  # group 2 is empty
    sampler = GroupPolicySampler(6, num_groups=3, seed=2)
    sampler.set_groups(labels)
    sampler.set_group_probs(torch.tensor([0.0, 0.0, 1.0]))
    with caplog.at_level(logging.WARNING, logger="ssl_rl.policy.samplers"):
        drawn = sampler.draw(6_000, "cpu")
        sampler.draw(10, "cpu")
    assert len([r for r in caplog.records if "empty permutation groups" in r.message]) == 1
    assert torch.bincount(drawn, minlength=6).min().item() > 850
    assert torch.equal(sampler.pop_actions()[:6_000], labels[drawn])


def test_policy_sampler_without_groups_or_probabilities_is_uniform():
    sampler = GroupPolicySampler(30, num_groups=3, seed=4)
    drawn = sampler.draw(30_000, "cpu")
    assert torch.bincount(drawn, minlength=30).min().item() > 850
    assert sampler.pop_actions().numel() == 0  # no groups, no actions
    sampler.set_groups(LABELS)
    drawn = sampler.draw(30_000, "cpu")  # groups by size: still uniform per permutation
    assert torch.bincount(drawn, minlength=30).min().item() > 850
    sampler.record_actions = False
    sampler.pop_actions()
    sampler.draw(10, "cpu")
    assert sampler.pop_actions().numel() == 0


def test_policy_sampler_rejects_bad_groups_and_probabilities():
    sampler = GroupPolicySampler(30, num_groups=3)
    with pytest.raises(ValueError, match=r"shape \(30,\)"):
        sampler.set_groups(LABELS[:10])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        sampler.set_groups(LABELS + 1)
    with pytest.raises(ValueError, match="non-negative"):
        sampler.set_group_probs(torch.tensor([0.5, -0.1, 0.6]))
    with pytest.raises(ValueError, match="sum to 0"):
        sampler.set_group_probs(torch.zeros(3))


def test_error_proportional_frequencies_follow_the_errors():
    errors = torch.tensor([0.0, 0.1, 0.3, 0.6])
    sampler = ErrorProportionalSampler(4, seed=5, floor=0.1)
    sampler.set_errors(errors)
    expected = 0.9 * errors.double() / errors.sum() + 0.1 / 4
    torch.testing.assert_close(sampler.probabilities, expected)
    drawn = sampler.draw(40_000, "cpu")
    frequencies = torch.bincount(drawn, minlength=4).double() / 40_000
    assert frequencies.argsort().tolist() == [0, 1, 2, 3]
    assert frequencies[0] > 0.015  # a solved permutation still gets the floor
    torch.testing.assert_close(frequencies, expected, atol=0.01, rtol=0)


def test_error_proportional_edge_cases():
    sampler = ErrorProportionalSampler(4, seed=0, floor=0.0)
    torch.testing.assert_close(sampler.probabilities, torch.full((4,), 0.25).double())
    sampler.set_errors(torch.zeros(4))
    torch.testing.assert_close(sampler.probabilities, torch.full((4,), 0.25).double())
    sampler.set_errors(torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert set(sampler.draw(1_000, "cpu").tolist()) == {1, 3}
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        sampler.set_errors(torch.zeros(3))
    with pytest.raises(ValueError, match="floor"):
        ErrorProportionalSampler(4, floor=1.5)


def _configured_samplers(seed: int) -> list:
    uniform = UniformSampler(30, seed=seed)
    policy = _policy_sampler(seed)
    policy.set_group_probs(torch.tensor([0.6, 0.1, 0.3]))
    errors = ErrorProportionalSampler(30, seed=seed)
    errors.set_errors(torch.linspace(0, 1, 30))
    return [uniform, policy, errors]


def test_state_dict_restores_identical_draws():
    originals = _configured_samplers(seed=7)
    for sampler in originals:
        sampler.draw(13, "cpu")
    saved = []
    for sampler in originals:
        buffer = io.BytesIO()
        torch.save(sampler.state_dict(), buffer)
        buffer.seek(0)
        saved.append(buffer)
    expected = [sampler.draw(50, "cpu") for sampler in originals]
    expected_actions = originals[1].pop_actions()

    fresh = [
        UniformSampler(30, seed=99),
        GroupPolicySampler(30, 3, seed=99),
        ErrorProportionalSampler(30, seed=99),
    ]
    for sampler, buffer in zip(fresh, saved, strict=True):
        sampler.load_state_dict(torch.load(buffer, weights_only=True))
    for sampler, draws in zip(fresh, expected, strict=True):
        assert torch.equal(sampler.draw(50, "cpu"), draws)
    # The 13 actions recorded before saving are part of the state.
    assert torch.equal(fresh[1].pop_actions(), expected_actions)


def test_state_dict_refuses_a_different_permutation_set():
    state = UniformSampler(30).state_dict()
    with pytest.raises(ValueError, match="permutation set changed"):
        UniformSampler(31).load_state_dict(state)


@pytest.mark.parametrize("device", ["meta", torch.device("cpu")])
def test_draws_land_on_the_requested_device(device):
    for sampler in _configured_samplers(seed=0):
        assert sampler.draw(4, device).device == torch.device(device)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_draws_on_gpu_match_cpu():
    on_cpu = [sampler.draw(32, "cpu") for sampler in _configured_samplers(seed=1)]
    on_gpu = [sampler.draw(32, "cuda") for sampler in _configured_samplers(seed=1)]
    for cpu, gpu in zip(on_cpu, on_gpu, strict=True):
        assert gpu.is_cuda and torch.equal(cpu, gpu.cpu())


def test_samples_per_action_share_one_group_each():
    sampler = GroupPolicySampler(30, num_groups=3, seed=1, samples_per_action=4)
    sampler.set_groups(LABELS)
    sampler.set_group_probs(torch.tensor([0.2, 0.5, 0.3]))
    drawn = sampler.draw(10, "cpu")  # actions of 4, 4 and 2 samples
    actions = sampler.pop_actions()
    assert actions.shape == (3,)
    assert torch.equal(LABELS[drawn], actions.repeat_interleave(4)[:10])
    sampler.draw(40_000, "cpu")
    frequencies = torch.bincount(sampler.pop_actions(), minlength=3).double() / 10_000
    torch.testing.assert_close(frequencies, torch.tensor([0.2, 0.5, 0.3]).double(), atol=0.015,
                               rtol=0)  # fmt: skip
    with pytest.raises(ValueError, match="samples_per_action"):
        GroupPolicySampler(30, 3, samples_per_action=0)


@pytest.mark.parametrize("make", [lambda: UniformSampler(30), _policy_sampler,
                                  lambda: ErrorProportionalSampler(30)])  # fmt: skip
def test_every_sampler_records_its_draws_on_request_and_resumes_them(make):
    sampler = make()
    sampler.draw(5, "cpu")
    assert sampler.pop_draws().numel() == 0  # not recording
    sampler.record_draws = True
    first = sampler.draw(5, "cpu")
    state = sampler.state_dict()
    second = sampler.draw(3, "cpu")
    assert torch.equal(sampler.pop_draws(), torch.cat([first, second]))
    resumed = make()
    resumed.load_state_dict(state)
    assert resumed.record_draws
    assert torch.equal(resumed.draw(3, "cpu"), second)
    assert torch.equal(resumed.pop_draws(), torch.cat([first, second]))
