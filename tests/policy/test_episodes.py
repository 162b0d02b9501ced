"""TaskPolicy without Lightning: when it validates, Eq. 7 rewards, updates, resume, rank hooks."""

from __future__ import annotations

import io

import pytest
import torch
from torch import Tensor

from ssl_rl.policy import (
    Communicator,
    EpisodeTiming,
    ModeSettings,
    Phase,
    TaskPolicy,
    TaskSeeds,
    make_mode,
)

Q, V, K = 12, 10, 4
SETTINGS = ModeSettings(num_groups=K, kmeans_iters=10, kmeans_inits=2, floor=0.1)


def _policy(
    mode: str = "rl",
    interval: int = 2,
    episode_steps: int = 1,
    reward_baseline: str = "scaled",
    comm: Communicator | None = None,
    settings: ModeSettings = SETTINGS,
) -> TaskPolicy:
    seeds = TaskSeeds.derive(seed=3, offset=0)
    return TaskPolicy(
        "spatial",
        make_mode(mode, settings, Q, seeds, comm),
        EpisodeTiming(interval, episode_steps),
        reward_baseline=reward_baseline,
        noise_seed=seeds.noise,
        comm=comm,
    )


def _s_with_error(error: float, seed: int = 0) -> Tensor:
    """A state s (Q, V) whose error E (the share of entries <= 1) is ``error``."""
    generator = torch.Generator().manual_seed(seed)
    wrong = round(error * Q * V)
    s = 1.05 + 0.5 * torch.rand(Q * V, generator=generator)
    s[torch.randperm(Q * V, generator=generator)[:wrong]] = 0.6 + 0.3 * torch.rand(wrong)
    return s.view(Q, V)


class _Training:
    """A stand-in for the network: s depends on what the sampler drew so far."""

    def __init__(self) -> None:
        self.counts = torch.zeros(Q)

    def measure(self) -> Tensor:
        generator = torch.Generator().manual_seed(int(self.counts.sum()))
        return 0.85 + 0.3 * torch.rand(Q, V, generator=generator) + 0.004 * self.counts[:, None]

    def train(self, policy: TaskPolicy) -> None:
        self.counts += torch.bincount(policy.sampler.draw(16, "cpu"), minlength=Q).float()


def _run(policy: TaskPolicy, steps: range, training: _Training) -> list[tuple[int, dict]]:
    logged = []
    for step in steps:
        report = policy.on_step(step, training.measure)
        logged += [(step, metrics) for metrics in report.metrics]
        training.train(policy)
    return logged


def _roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


# ----------------------------------------------------------------- the schedule
@pytest.mark.parametrize(
    ("interval", "episode_steps", "validations", "closes"),
    [
        (2, 1, [0, 2, 3, 5, 6, 8], [3, 6]),  # fixed π for 2 steps, then a 1-step episode
        (1, 2, [0, 1, 3, 4, 6, 7], [3, 6]),
        (0, 2, [0, 2, 4, 6, 8], [2, 4, 6, 8]),  # back to back: each validation closes, opens
    ],
)
def test_validates_at_the_phase_boundaries(
    interval: int, episode_steps: int, validations: list[int], closes: list[int]
) -> None:
    policy = _policy("monitor", interval, episode_steps)
    measured: list[int] = []
    closed: list[int] = []
    for step in range(9):

        def measure(step: int = step) -> Tensor:
            measured.append(step)
            return _s_with_error(0.3, seed=step)

        if policy.on_step(step, measure).episode_closed:
            closed.append(step)
    assert measured == validations == policy.history["validation_steps"]
    assert closed == closes == policy.history["episode_steps"]


def test_phases_of_the_timing() -> None:
    timing = EpisodeTiming(interval=2, episode_steps=1)
    assert timing.cycle == 3
    assert [timing.phase(step) for step in range(4)] == [
        Phase(closes=True, opens=False),
        None,
        Phase(closes=False, opens=True),
        Phase(closes=True, opens=False),
    ]
    assert EpisodeTiming(0, 2).phase(4) == Phase(closes=True, opens=True)
    with pytest.raises(ValueError, match=r"policy\.interval"):
        EpisodeTiming(-1, 1)
    with pytest.raises(ValueError, match="episode_steps"):
        EpisodeTiming(0, 0)


# ----------------------------------------------------------------- rewards (Eq. 7)
ERRORS = [0.5, 0.45, 0.4, 0.3, 0.35, 0.2, 0.25]


def _scripted(policy: TaskPolicy, steps: int) -> None:
    errors = iter(ERRORS)
    for step in range(steps):
        policy.on_step(step, lambda: _s_with_error(next(errors), seed=len(ERRORS)))


@pytest.mark.parametrize("baseline", ["paper", "scaled"])
def test_rewards_follow_eq_7_with_a_fixed_phase(baseline: str) -> None:
    """Validations at 0, 2, 3, 5, 6: episodes open at 2 and 5 (2 steps after E_{t-1})."""
    policy = _policy("monitor", interval=2, episode_steps=1, reward_baseline=baseline)
    _scripted(policy, 7)
    e = policy.history["errors"]
    assert e == pytest.approx(ERRORS[:5])
    ratio = 1.0 if baseline == "paper" else 1 / 2  # the trend over 2 steps, episode of 1
    expected = [e[1] + (e[1] - e[0]) * ratio - e[2], e[3] + (e[3] - e[2]) * ratio - e[4]]
    assert policy.history["rewards"] == pytest.approx(expected)
    assert policy.history["episode_errors"] == [[e[1], e[2]], [e[3], e[4]]]


def test_rewards_follow_eq_7_back_to_back() -> None:
    """The first episode has no E_{t-1}: E^BL = E_t; later ones extrapolate 2 E_t − E_{t−1}."""
    policy = _policy("errprop", interval=0, episode_steps=2)
    _scripted(policy, 7)
    e = policy.history["errors"]
    expected = [e[0] - e[1], 2 * e[1] - e[0] - e[2], 2 * e[2] - e[1] - e[3]]
    assert policy.history["rewards"] == pytest.approx(expected)
    assert policy.episodes == 3 and policy.episode is not None  # the 4th still open


def test_metrics_of_a_closing_step() -> None:
    policy = _policy("rl", interval=0, episode_steps=1)
    training = _Training()
    logged = _run(policy, range(3), training)
    assert [step for step, _ in logged] == [0, 1, 1, 2, 2]
    validation, episode = logged[1][1], logged[2][1]
    assert list(validation) == ["policy/spatial/validation_error"]
    assert list(episode)[:4] == [
        "policy/spatial/reward",
        "policy/spatial/error_before_episode",
        "policy/spatial/error_after_episode",
        "policy/spatial/hardest_quartile_share",
    ]
    assert {"policy/spatial/entropy", "policy/spatial/return"} <= set(episode)
    assert episode["policy/spatial/episode"] == 1.0  # episodes closed so far


# ----------------------------------------------------------------- only rl learns
def _weights(policy: TaskPolicy) -> Tensor | None:
    learner = getattr(policy.mode, "learner", None)
    if learner is None:
        return None
    return torch.cat([p.detach().flatten().clone() for p in learner.policy.parameters()])


@pytest.mark.parametrize("mode", ["rl", "errprop", "monitor"])
def test_only_rl_updates_pi_and_only_when_an_episode_closes(mode: str) -> None:
    policy = _policy(mode, interval=1, episode_steps=2)
    training = _Training()
    changed = []
    for step in range(10):
        before = _weights(policy)
        closed = policy.on_step(step, training.measure).episode_closed
        after = _weights(policy)
        if before is not None and after is not None and not torch.equal(before, after):
            changed.append(step)
        assert closed == (step in (3, 6, 9))
        training.train(policy)
    history = policy.history
    assert len(history["rewards"]) == len(history["quantile_fractions"]) == 3
    if mode == "rl":
        assert changed == [3, 6, 9]
        assert torch.tensor(history["action_counts"]).sum(dim=1).tolist() == [32, 32, 32]
        assert len(history["episode_states"]) == len(history["group_probs"]) == 3
    else:
        assert changed == []
        for key in ("action_counts", "group_fractions", "episode_states", "group_probs"):
            assert history[key] == []


def test_errprop_draws_follow_the_latest_validation_error() -> None:
    policy = _policy("errprop", interval=0, episode_steps=1)
    s = _s_with_error(0.0)
    s[3] = 0.5  # permutation 3 always wrong, all others right
    policy.on_step(0, lambda: s)
    draws = policy.sampler.draw(1000, "cpu")
    # 90 % in proportion to the error (all on 3), 10 % uniform.
    assert 0.85 < float((draws == 3).float().mean()) < 0.95


# ----------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(
    ("mode", "interval", "stop"),
    [("rl", 2, 7), ("rl", 0, 5), ("errprop", 2, 7), ("credit", 0, 5), ("credit", 2, 7)],
)
def test_state_dict_resumes_exactly_mid_episode(mode: str, interval: int, stop: int) -> None:
    straight, training = _policy(mode, interval, 2), _Training()
    logged_straight = _run(straight, range(14), training)

    first, resumed_training = _policy(mode, interval, 2), _Training()
    logged = _run(first, range(stop), resumed_training)
    assert first.episode is not None  # stopped inside an episode
    state = _roundtrip(first.state_dict())
    resumed = _policy(mode, interval, 2)
    resumed.load_state_dict(state)
    logged += _run(resumed, range(stop, 14), resumed_training)

    assert logged == logged_straight
    assert torch.equal(training.counts, resumed_training.counts)  # the same draws
    a, b = _roundtrip(straight.state_dict()), _roundtrip(resumed.state_dict())
    _assert_same(a, b)


def _assert_same(a: object, b: object) -> None:
    if isinstance(a, Tensor):
        assert isinstance(b, Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


def test_saved_state_keeps_the_checkpoint_format() -> None:
    for mode in ("rl", "errprop", "monitor"):
        policy = _policy(mode)
        policy.on_step(0, lambda: _s_with_error(0.3))
        state = policy.state_dict()
        assert list(state) == [
            "sampler",
            "learner",
            "kmeans_generator",
            "initial_learner",
            "last_error",
            "last_step",
            "episode",
            "episodes",
            "noise_test",
            "history",
        ]
        assert (state["learner"] is None) == (mode != "rl")


# ----------------------------------------------------------------- rank hooks
class _Recording(Communicator):
    def __init__(self, agree: bool = True) -> None:
        self.calls: list[str] = []
        self._agree = agree

    def broadcast(self, tensor: Tensor) -> Tensor:
        self.calls.append("broadcast")
        return tensor

    def gather(self, values: Tensor) -> Tensor:
        self.calls.append("gather")
        return torch.cat([values, values])  # two ranks that drew the same

    def agree(self, fingerprint: Tensor) -> bool:
        self.calls.append("agree")
        return self._agree


def test_rank_hooks_are_called_where_ranks_must_agree() -> None:
    comm = _Recording()
    policy = _policy("rl", interval=1, episode_steps=1, comm=comm)
    _run(policy, range(3), _Training())
    # step 0: validate, act; 1: validate, act (opens); 2: validate, gather draws and actions, act
    assert comm.calls == [
        *["broadcast", "agree"],
        *["broadcast", "agree"],
        *["broadcast", "gather", "gather", "agree"],
    ]
    assert sum(policy.history["action_counts"][0]) == 32  # both "ranks"' 16 actions


def test_ranks_that_disagree_fail_loudly() -> None:
    policy = _policy("rl", comm=_Recording(agree=False))
    with pytest.raises(RuntimeError, match="spatial: the permutation policy differs across ranks"):
        policy.on_step(0, lambda: _s_with_error(0.3))


# ----------------------------------------------------------------- end of training
def test_noise_test_and_summary() -> None:
    rl = _policy("rl", interval=0, episode_steps=1)
    _run(rl, range(5), _Training())
    assert rl.run_noise_test(shuffles=0) == {}
    metrics = rl.run_noise_test(shuffles=4)
    assert list(metrics) == ["policy/spatial/p_value_vs_noise"]
    assert rl.noise_test is not None and rl.noise_test["shuffles"] == 4
    entry = rl.summary()
    assert entry["mode"] == "rl" and entry["episodes"] == 4
    assert entry["p_value_vs_noise"] == metrics["policy/spatial/p_value_vs_noise"]
    assert set(entry) >= {"reward_mean", "reward_std", "hard_mass_excess", "hardest_quartile_share"}

    monitor = _policy("monitor", interval=0, episode_steps=1)
    _run(monitor, range(5), _Training())
    assert monitor.run_noise_test(shuffles=4) == {}
    entry = monitor.summary()
    assert entry["mode"] == "monitor" and entry["p_value_vs_noise"] is None
    assert "hard_mass_excess" not in entry


def test_seeds_follow_the_task_offset_and_rank() -> None:
    seeds = TaskSeeds.derive(seed=5, offset=1, rank=2)
    assert seeds == TaskSeeds(
        sampler=5 + 104_729 * 2 + 14, learner=6, kmeans=5 + 15_485_863 * 2, noise=6
    )
