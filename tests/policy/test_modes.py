"""The policy modes share one interface; ``rl`` and ``credit`` group, act and learn."""

from __future__ import annotations

import pytest
import torch

from ssl_rl.policy import (
    MODES,
    ErrorProportionalMode,
    GroupPolicySampler,
    ModeSettings,
    PolicyMode,
    RecordingSampler,
    RLMode,
    TaskSeeds,
    UniformMode,
    make_mode,
)
from ssl_rl.policy.modes import CreditMode, GroupedPolicy, PolicyStep

Q, V, K = 12, 6, 4
SETTINGS = ModeSettings(num_groups=K, kmeans_iters=10, kmeans_inits=2)
SEEDS = TaskSeeds.derive(seed=1, offset=0)


def _s(seed: int = 0) -> torch.Tensor:
    return 0.8 + 0.4 * torch.rand(Q, V, generator=torch.Generator().manual_seed(seed))


def test_the_config_names_map_to_the_modes() -> None:
    assert dict(MODES) == {
        "rl": RLMode,
        "credit": CreditMode,
        "errprop": ErrorProportionalMode,
        "monitor": UniformMode,
    }
    with pytest.raises(ValueError, match=r"policy\.mode must be one of"):
        make_mode("greedy", SETTINGS, Q, SEEDS)


@pytest.mark.parametrize("name", list(MODES))
def test_every_mode_has_the_same_interface(name: str) -> None:
    mode = make_mode(name, SETTINGS, Q, SEEDS)
    assert isinstance(mode, PolicyMode) and mode.name == name
    assert isinstance(mode.sampler, RecordingSampler) and mode.sampler.num_perms == Q
    learns = name in ("rl", "credit")
    mode.on_validation(torch.rand(Q))
    grouped = mode.act(_s(), opening=True)
    assert (grouped is not None) == learns
    mode.sampler.record_draws = True
    drawn = mode.sampler.draw(20, "cpu")
    assert torch.equal(mode.sampler.pop_draws(), drawn)
    mode.on_episode_draws(drawn)
    mode.on_validation(torch.rand(Q))
    step = mode.update(None if grouped is None else grouped.groups.state, reward=0.1)
    assert (step is not None) == learns
    assert (mode.replay_learner() is not None) == (name == "rl")
    state = mode.state_dict()
    own = ["credit"] if name == "credit" else []
    assert list(state) == ["sampler", "learner", "kmeans_generator", "initial_learner", *own]

    # A fresh mode restored from the state draws what the original draws next.
    restored = make_mode(name, SETTINGS, Q, SEEDS)
    restored.load_state_dict({**state, "episodes": 3})  # the policy's own keys are ignored
    assert torch.equal(restored.sampler.draw(50, "cpu"), mode.sampler.draw(50, "cpu"))


def test_rl_mode_groups_acts_and_learns() -> None:
    mode = make_mode("rl", SETTINGS, Q, SEEDS)
    assert isinstance(mode, RLMode) and isinstance(mode.sampler, GroupPolicySampler)
    grouped = mode.act(_s(), opening=True)
    assert isinstance(grouped, GroupedPolicy)
    assert grouped.groups.labels.shape == (Q,) and grouped.probs.shape == (K,)
    torch.testing.assert_close(grouped.probs.sum(), torch.tensor(1.0))
    assert torch.equal(mode.sampler.group_sizes, grouped.groups.counts)

    mode.sampler.draw(24, "cpu")
    before = [p.detach().clone() for p in mode.learner.policy.parameters()]
    step = mode.update(grouped.groups.state, reward=1.0)
    assert isinstance(step, PolicyStep)
    assert int(step.counts.sum()) == 24 and len(step.updates) == 1
    after = list(mode.learner.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert mode.sampler.record_actions is False  # until the next episode opens
    with pytest.raises(ValueError, match="group state"):
        mode.update(None, reward=0.0)


def test_rl_mode_outside_an_episode_records_no_actions() -> None:
    mode = make_mode("rl", SETTINGS, Q, SEEDS)
    assert isinstance(mode, RLMode)
    mode.act(_s(), opening=False)
    mode.sampler.draw(10, "cpu")
    assert mode.sampler.pop_actions().numel() == 0


def test_rl_mode_seeds_and_global_rng() -> None:
    """Same π and groups on every rank (only the sampler's seed has the rank); the global
    RNG is neither used nor consumed."""
    torch.manual_seed(0)
    rng = torch.random.get_rng_state()
    ranks = [make_mode("rl", SETTINGS, Q, TaskSeeds.derive(1, 0, rank)) for rank in (0, 1)]
    assert torch.equal(torch.random.get_rng_state(), rng)
    a, b = (mode for mode in ranks if isinstance(mode, RLMode))
    for p, q in zip(a.learner.policy.parameters(), b.learner.policy.parameters(), strict=True):
        assert torch.equal(p, q)
    ga, gb = a.act(_s(), opening=True), b.act(_s(), opening=True)
    assert torch.equal(ga.fingerprint, gb.fingerprint)
    assert not torch.equal(a.sampler.draw(30, "cpu"), b.sampler.draw(30, "cpu"))
    assert torch.equal(torch.random.get_rng_state(), rng)

    fresh = a.replay_learner()
    assert fresh is not None
    for p, q in zip(fresh().policy.parameters(), fresh().policy.parameters(), strict=True):
        assert torch.equal(p, q)


def test_errprop_mode_follows_the_validation_errors() -> None:
    mode = make_mode("errprop", ModeSettings(errprop_floor=0.0), Q, SEEDS)
    errors = torch.zeros(Q)
    errors[5] = 0.5
    mode.on_validation(errors)
    assert set(mode.sampler.draw(100, "cpu").tolist()) == {5}
    assert mode.act(_s(), opening=True) is None


def test_task_settings_override_and_cap_the_groups_at_the_classes() -> None:
    settings = ModeSettings(num_groups=10, floor=0.1)
    assert settings.for_task({}, num_classes=100) == settings
    rotation = settings.for_task({"num_groups": 4}, num_classes=4)
    assert rotation.num_groups == 4 and rotation.floor == 0.1
    assert settings.for_task({}, num_classes=4).num_groups == 4  # capped without being told
    assert settings.for_task({"floor": 0.2}, num_classes=100).floor == 0.2
    with pytest.raises(ValueError, match=r"\['groups'\] are not policy settings"):
        settings.for_task({"groups": 4}, num_classes=4)
