"""The policy network and REINFORCE learner (Eq. 9): returns, baseline, learning, resume."""

import io
import math

import pytest
import torch

from ssl_rl.policy import PolicyNetwork, ReinforceLearner, discounted_return

NUM_GROUPS = 10


def _state(seed: int = 0) -> torch.Tensor:
    return torch.rand(NUM_GROUPS, 2, generator=torch.Generator().manual_seed(seed))


def _learner(seed: int = 0, **kwargs) -> ReinforceLearner:
    torch.manual_seed(seed)
    return ReinforceLearner(PolicyNetwork(NUM_GROUPS, 16), **kwargs)


def test_network_shapes_and_uniform_start():
    policy = PolicyNetwork(NUM_GROUPS, 16)
    assert policy(_state()).shape == (NUM_GROUPS,)
    assert policy(torch.stack([_state(0), _state(1)])).shape == (2, NUM_GROUPS)
    probs = policy.distribution(_state()).probs
    torch.testing.assert_close(probs, torch.full((NUM_GROUPS,), 0.1))
    with pytest.raises(ValueError, match=r"\(10, 2\)"):
        policy(torch.zeros(NUM_GROUPS * 2))


def test_network_layers_follow_the_paper():
    policy = PolicyNetwork(NUM_GROUPS, 16)
    linear = [m for m in policy.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(20, 16), (16, 10)]


def test_discounted_return_by_hand():
    assert discounted_return([1.0, 2.0, 4.0], 0.5) == pytest.approx(1.0 + 1.0 + 1.0)
    assert discounted_return([3.0], 0.9) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("horizon", "updates_per_record", "flushed_returns", "all_returns"),
    [
        (0, [1, 1, 1], [], [1.0, 2.0, 4.0]),
        # G_0 = 1 + 0.5·2, G_1 = 2 + 0.5·4, G_2 = 4 (truncated at flush)
        (1, [0, 1, 1], [4.0], [2.0, 4.0, 4.0]),
        # G_0 = 1 + 0.5·2 + 0.25·4; flush: G_1 = 2 + 0.5·4, G_2 = 4
        (2, [0, 0, 1], [4.0, 4.0], [3.0, 4.0, 4.0]),
    ],
)
def test_returns_over_a_horizon(horizon, updates_per_record, flushed_returns, all_returns):
    learner = _learner(gamma=0.5, horizon=horizon)
    actions = torch.tensor([0, 1, 2])
    updates = []
    for reward, expected_count in zip([1.0, 2.0, 4.0], updates_per_record, strict=True):
        made = learner.record(_state(), actions, reward)
        assert len(made) == expected_count
        updates += made
    flushed = learner.flush()
    assert [u.episode_return for u in flushed] == pytest.approx(flushed_returns)
    updates += flushed
    assert [u.episode for u in updates] == [0, 1, 2]
    assert [u.episode_return for u in updates] == pytest.approx(all_returns)
    assert learner.pending == 0


def test_baseline_first_return_then_moving_average_and_loss_by_hand():
    beta = 0.05
    learner = _learner(entropy_weight=beta, baseline_momentum=0.9)
    actions = torch.full((4,), 3)
    first = learner.record(_state(), actions, 0.2)[0]
    # First return initialises b: no advantage, and the entropy gradient at the uniform
    # start is zero, so the policy is still uniform afterwards.
    assert first.baseline == pytest.approx(0.2) and first.advantage == pytest.approx(0.0)
    assert first.loss == pytest.approx(-beta * math.log(NUM_GROUPS), rel=1e-5)
    second = learner.record(_state(), actions, 0.5)[0]
    assert second.baseline == pytest.approx(0.2) and second.advantage == pytest.approx(0.3)
    torch.testing.assert_close(second.probs, torch.full((NUM_GROUPS,), 0.1))
    # loss = -(A · Σ_k log π(a_k) + β H) with 4 actions of probability 0.1
    expected = -(0.3 * 4 * math.log(0.1) + beta * math.log(NUM_GROUPS))
    assert second.loss == pytest.approx(expected, rel=1e-5)
    assert learner.baseline == pytest.approx(0.9 * 0.2 + 0.1 * 0.5)
    third = learner.record(_state(), actions, 0.0)[0]
    assert third.probs[3] > 0.1  # the rewarded group became more likely


def test_mean_over_actions_divides_by_k():
    learner = _learner(entropy_weight=0.0, mean_over_actions=True)
    actions = torch.full((4,), 3)
    learner.record(_state(), actions, 0.2)
    update = learner.record(_state(), actions, 0.5)[0]
    assert update.loss == pytest.approx(-0.3 * math.log(0.1), rel=1e-5)


def _bandit(
    learner: ReinforceLearner, episodes: int, actions_per_episode: int = 64
) -> torch.Tensor:
    """Reward = fraction of the episode's actions in group 7, plus noise."""
    generator = torch.Generator().manual_seed(1)
    state = _state()
    for _ in range(episodes):
        with torch.no_grad():
            probs = learner.policy.distribution(state).probs
        actions = torch.multinomial(probs, actions_per_episode, True, generator=generator)
        noise = 0.05 * torch.randn(1, generator=generator).item()
        learner.record(state, actions, (actions == 7).float().mean().item() + noise)
    with torch.no_grad():
        return learner.policy.distribution(state).probs


@pytest.mark.parametrize("seed", [0, 1])
def test_bandit_learns_the_rewarded_group(seed):
    probs = _bandit(_learner(seed=seed), episodes=150)
    assert int(probs.argmax()) == 7
    assert probs[7].item() > 0.5


def test_huge_entropy_weight_keeps_the_policy_near_uniform():
    probs = _bandit(_learner(entropy_weight=10.0), episodes=150)
    assert probs.max().item() < 0.15


def test_state_dict_round_trip_continues_identically():
    learner = _learner(seed=0, horizon=1, gamma=0.9)
    rewards = [0.1, -0.2, 0.3, 0.05, 0.4, -0.1, 0.2, 0.0]
    actions = [
        torch.randint(NUM_GROUPS, (16,), generator=torch.Generator().manual_seed(i))
        for i in range(8)
    ]
    for t in range(4):
        learner.record(_state(t), actions[t], rewards[t])
    assert learner.pending == 1
    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    reference = [u for t in range(4, 8) for u in learner.record(_state(t), actions[t], rewards[t])]
    reference += learner.flush()

    buffer.seek(0)
    resumed = _learner(seed=123, horizon=1, gamma=0.9)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    replay = [u for t in range(4, 8) for u in resumed.record(_state(t), actions[t], rewards[t])]
    replay += resumed.flush()

    assert [u.episode for u in replay] == [u.episode for u in reference] == [3, 4, 5, 6, 7]
    for ours, theirs in zip(replay, reference, strict=True):
        assert ours.scalars() == theirs.scalars()
        assert torch.equal(ours.probs, theirs.probs)
    for ours, theirs in zip(resumed.policy.parameters(), learner.policy.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_sgd_optimizer_and_bad_arguments():
    learner = _learner(optimizer="sgd")
    assert isinstance(learner.optimizer, torch.optim.SGD)
    with pytest.raises(ValueError, match="optimizer"):
        _learner(optimizer="rmsprop")
    with pytest.raises(ValueError, match="horizon"):
        _learner(horizon=-1)
    with pytest.raises(ValueError, match="non-empty 1-D long"):
        learner.record(_state(), torch.tensor([], dtype=torch.long), 0.0)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        learner.record(_state(), torch.tensor([10]), 0.0)
    with pytest.raises(ValueError, match="state must have shape"):
        learner.record(torch.zeros(3, 2), torch.tensor([1]), 0.0)
