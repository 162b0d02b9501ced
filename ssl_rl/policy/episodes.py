"""One task's permutation policy over training: phases, episodes, rewards, history.

Per task, training alternates two phases until the end [paper, Sect. 3.2]:

1. ``interval`` steps with π fixed: permutations are drawn from π at the current state.
2. An episode of ``episode_steps`` steps: validation gives ŝ_t and E_t, π proposes the
   actions (a group per ``samples_per_action`` training samples), the network trains,
   validation gives E_{t+1}, the reward r_t = E^BL_{t+1} − E_{t+1} updates π (Eq. 7, 9).

With ``interval = 0`` episodes follow each other, each validation closing one episode and
opening the next (the paper's Fig. 4 protocol). E_{t−1} is the validation that preceded E_t;
``reward_baseline`` selects how E^BL_{t+1} extrapolates from it (``ssl_rl.policy.reward``).

Every mode (``ssl_rl.policy.modes``) runs the same validations and episodes and records what
it drew per episode (by error quartile) and the reward it would have earned, so controls
compare episode by episode; only ``rl`` updates π. At the end of training a shuffled-reward
replay of the learner (``ssl_rl.policy.replay``) tells whether π moved beyond noise.

No Lightning here: the caller passes the step and a way to measure s, and logs the metrics
returned; ranks share measurements through a :class:`Communicator`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypedDict

import torch
from torch import Tensor

from ssl_rl.policy.communicator import Communicator
from ssl_rl.policy.difficulty import FIG4_BINS, bin_shares, error_quantile_bins, hard_groups
from ssl_rl.policy.history import History, new_history
from ssl_rl.policy.modes.base import GroupedPolicy, PolicyMode
from ssl_rl.policy.network import size_shares
from ssl_rl.policy.replay import noise_test
from ssl_rl.policy.reward import extrapolated_reward, span_ratio
from ssl_rl.policy.samplers import RecordingSampler
from ssl_rl.policy.state import error_rate, per_permutation_error
from ssl_rl.policy.timing import EpisodeTiming

log = logging.getLogger(__name__)

Metrics = dict[str, float]

# Saved as they are; the mode saves its own keys next to them.
_SAVED = ("last_error", "last_step", "episode", "episodes", "noise_test")


class OpenEpisode(TypedDict):
    """The episode between its opening and its closing validation."""

    error: float  # E_t
    error_before: float | None  # E_{t-1}
    steps_before: int  # steps from E_{t-1} to E_t (0 without E_{t-1})
    bins: Tensor  # validation-error quartile of every permutation at E_t, 0 = hardest
    state: Tensor | None  # ŝ_t, for modes with groups


class Validation(NamedTuple):
    s: Tensor  # the state s, identical on every rank
    error: float  # E
    permutation_errors: Tensor  # (|Ψ|,) on the CPU


@dataclass
class StepReport:
    """What a step did: metrics to log at the step, in order, and whether an episode closed."""

    metrics: list[Metrics] = field(default_factory=list)
    episode_closed: bool = False


class TaskPolicy:
    """The policy of one task: when to validate, episodes, rewards and what it recorded."""

    def __init__(
        self,
        task: str,
        mode: PolicyMode,
        timing: EpisodeTiming,
        reward_baseline: str = "scaled",
        noise_seed: int = 0,
        comm: Communicator | None = None,
    ) -> None:
        span_ratio(reward_baseline, 1, 1)  # validates the name
        self.task = task
        self.mode = mode
        self.timing = timing
        self.reward_baseline = reward_baseline
        self.noise_seed = noise_seed
        self.comm = comm or Communicator()
        self.last_error: float | None = None  # the latest validation's error ...
        self.last_step: int | None = None  # ... and its step
        self.episode: OpenEpisode | None = None
        self.episodes = 0
        self.noise_test: dict[str, Any] | None = None
        self.history: History = new_history()

    @property
    def sampler(self) -> RecordingSampler:
        """What the task's training draws its permutations from."""
        return self.mode.sampler

    def on_step(self, step: int, measure: Callable[[], Tensor]) -> StepReport:
        """Before training step ``step``: validate (``measure`` gives s) if one is due, close
        and open episodes."""
        phase = self.timing.phase(step)
        report = StepReport()
        if phase is None:
            return report
        validation = self._validate(step, measure())
        report.metrics.append({self._key("validation_error"): validation.error})
        if phase.closes:
            closing = self._close_episode(step, validation.error)
            if closing is not None:
                report.metrics.append(closing)
                report.episode_closed = True
        if phase.opens:
            self._open_episode(step, validation)
        else:
            self._act(validation.s, opening=False)
        self.last_error, self.last_step = validation.error, step
        return report

    # ----------------------------------------------------------------- episodes
    def _validate(self, step: int, s: Tensor) -> Validation:
        """Record s (rank 0's on every rank): E and the per-permutation error."""
        s = self.comm.broadcast(s)
        error = float(error_rate(s))
        permutation_errors = per_permutation_error(s).cpu()
        self.history["validation_steps"].append(step)
        self.history["errors"].append(error)
        self.history["permutation_errors"].append(permutation_errors.half())
        self.mode.on_validation(permutation_errors)
        return Validation(s, error, permutation_errors)

    def _act(self, s: Tensor, opening: bool) -> GroupedPolicy | None:
        """Let the mode act on s; every rank must then sample from the same π."""
        grouped = self.mode.act(s, opening)
        if grouped is None:
            return None
        if not self.comm.agree(grouped.fingerprint):
            raise RuntimeError(
                f"{self.task}: the permutation policy differs across ranks (groups, "
                "probabilities or policy weights); every rank must sample from the same π"
            )
        if opening:  # record the π that will act in the episode
            hard = hard_groups(grouped.probs.numel())
            self.history["group_probs"].append(grouped.probs.tolist())
            self.history["hard_mass"].append(float(grouped.probs[hard].sum()))
            shares = size_shares(grouped.groups.state)
            self.history["neutral_hard_mass"].append(float(shares[hard].sum()))
        return grouped

    def _open_episode(self, step: int, validation: Validation) -> None:
        """Open episode t at E_t: the mode acts on ŝ_t; draws are recorded from now on."""
        grouped = self._act(validation.s, opening=True)
        self.episode = {
            "error": validation.error,
            "error_before": self.last_error,
            "steps_before": 0 if self.last_step is None else step - self.last_step,
            "bins": error_quantile_bins(
                validation.permutation_errors, validation.s.float().mean(dim=1).cpu()
            ),
            "state": None if grouped is None else grouped.groups.state.cpu(),
        }
        self.sampler.pop_draws()
        self.sampler.record_draws = True

    def _close_episode(self, step: int, new_error: float) -> Metrics | None:
        """Reward the open episode, if any (Eq. 7); the mode learns from it (Eq. 9)."""
        episode = self.episode
        if episode is None:
            return None
        ratio = span_ratio(self.reward_baseline, self.timing.episode_steps, episode["steps_before"])
        errors = [e for e in (episode["error_before"], episode["error"]) if e is not None]
        reward = extrapolated_reward(errors, new_error, ratio)
        draws = self.comm.gather(self.sampler.pop_draws())
        self.sampler.record_draws = False
        self.mode.on_episode_draws(draws)
        history = self.history
        history["episode_steps"].append(step)
        history["episode_errors"].append([episode["error"], new_error])
        history["rewards"].append(reward)
        quantiles = bin_shares(draws, episode["bins"], FIG4_BINS)
        history["quantile_fractions"].append(quantiles)
        metrics = {
            self._key("reward"): reward,
            self._key("error_before_episode"): episode["error"],
            self._key("error_after_episode"): new_error,
            self._key("hardest_quartile_share"): quantiles[0],
        }
        learned = self.mode.update(episode["state"], reward)
        if learned is not None and episode["state"] is not None:
            counts = learned.counts
            history["action_counts"].append(counts.tolist())
            history["group_fractions"].append((counts / counts.sum()).tolist())
            history["episode_states"].append(episode["state"].tolist())
            for update in learned.updates:
                metrics.update({self._key(k): v for k, v in update.scalars().items()})
        self.episodes += 1
        self.episode = None
        metrics[self._key("episode")] = float(self.episodes)
        return metrics

    # ----------------------------------------------------------------- end of training
    def run_noise_test(self, shuffles: int) -> Metrics:
        """Shuffled-reward replay: is π's mass on the hard groups beyond noise? Needs a learner
        and two finished episodes; returns the p-value to log (nothing if it did not run)."""
        history = self.history
        episodes = len(history["action_counts"])
        make_learner = self.mode.replay_learner()
        hard = hard_groups(self.mode.settings.num_groups)
        result = self.mode.replay_noise_test(hard, shuffles, self.noise_seed)
        if result is None:
            if make_learner is None or episodes < 2 or shuffles < 1:
                return {}
            result = noise_test(
                make_learner,
                torch.tensor(history["episode_states"]),
                torch.tensor(history["action_counts"]),
                history["rewards"],
                hard,
                shuffles=shuffles,
                seed=self.noise_seed,
            )
        self.noise_test = result.as_dict()
        log.info(
            "%s policy vs shuffled rewards: excess mass on the hard groups %.4f "
            "(noise %.4f ± %.4f), p = %.3f over %d episodes",
            self.task,
            result.statistic,
            result.null_mean,
            result.null_std,
            result.p_value,
            episodes,
        )
        return {self._key("p_value_vs_noise"): result.p_value}

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` records of this task's policy."""
        history = self.history
        rewards = torch.tensor(history["rewards"], dtype=torch.float64)
        quantiles = torch.tensor(history["quantile_fractions"], dtype=torch.float64)
        entry: dict[str, Any] = {
            "mode": self.mode.name,
            "episodes": self.episodes,
            "reward_mean": float(rewards.mean()) if rewards.numel() else None,
            "reward_std": float(rewards.std()) if rewards.numel() > 1 else None,
            "hardest_quartile_share": float(quantiles[:, 0].mean()) if len(quantiles) else None,
            "p_value_vs_noise": None,
        }
        if self.noise_test is not None:
            entry["p_value_vs_noise"] = self.noise_test["p_value"]
            entry["hard_mass_excess"] = self.noise_test["statistic"]
            entry["hard_mass_excess_noise"] = [
                self.noise_test["null_mean"],
                self.noise_test["null_std"],
            ]
        return entry

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The mode's state (sampler, learner, k-means generator, initial learner), the open
        episode and the history: all a resumed run needs to continue exactly."""
        return {
            **self.mode.state_dict(),
            **{key: copy.deepcopy(getattr(self, key)) for key in _SAVED},
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mode.load_state_dict(state)
        for key in _SAVED:
            setattr(self, key, state[key])
        self.history = {**new_history(), **state["history"]}

    def _key(self, name: str) -> str:
        return f"policy/{self.task}/{name}"
