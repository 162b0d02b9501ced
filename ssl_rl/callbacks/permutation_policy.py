"""The permutation policy as a Lightning callback: state, groups, episodes, REINFORCE updates.

Per task, training alternates two phases until the end [paper, Sect. 3.2]:

1. ``interval`` steps with π fixed: permutations are drawn from π at the current state.
2. An episode of ``episode_steps`` steps: validation gives ŝ_t and E_t, π proposes the
   actions (a group per ``samples_per_action`` training samples), the network trains,
   validation gives E_{t+1}, the reward r_t = E^BL_{t+1} − E_{t+1} updates π (Eq. 7, 9).

With ``interval = 0`` episodes follow each other, each validation closing one episode and
opening the next (the paper's Fig. 4 protocol). E_{t−1} is the validation that preceded E_t;
``reward_baseline`` selects how E^BL_{t+1} extrapolates from it (``ssl_rl.policy.reward``).

Modes: ``rl`` (the paper's policy), ``errprop`` (non-learned control: permutations drawn in
proportion to their validation error, same validations, no RL) and ``monitor`` (uniform
sampling). Every mode runs the same validations and episodes and records what it drew per
episode (by error quartile) and the reward it would have earned, so controls compare
episode by episode; only ``rl`` updates π. At the end of training a shuffled-reward replay of
the learner (``ssl_rl.policy.replay``) tells whether π moved beyond noise.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from ssl_rl.figures.image_logging import log_figure
from ssl_rl.figures.policy import (
    fig4_figure,
    permutation_error_heatmap,
    policy_probability_figure,
    save_png,
)
from ssl_rl.policy.difficulty import FIG4_BINS, bin_shares, error_quantile_bins, hard_groups
from ssl_rl.policy.groups import GroupAssignment, group_permutations
from ssl_rl.policy.network import PolicyNetwork, size_shares
from ssl_rl.policy.reinforce import ReinforceLearner
from ssl_rl.policy.replay import noise_test
from ssl_rl.policy.reward import extrapolated_reward, span_ratio
from ssl_rl.policy.samplers import ErrorProportionalSampler, GroupPolicySampler, UniformSampler
from ssl_rl.policy.state import error_rate, per_permutation_error

log = logging.getLogger(__name__)

MODES = ("rl", "errprop", "monitor")


def _new_history() -> dict[str, list[Any]]:
    return {
        # one entry per validation
        "validation_steps": [],
        "errors": [],
        "permutation_errors": [],
        # one entry per finished episode
        "episode_steps": [],  # the step that closed it
        "episode_errors": [],  # [E_t, E_{t+1}]
        "rewards": [],
        "quantile_fractions": [],  # drawn permutations per validation-error quartile, 0 = hard
        # rl only, one entry per finished episode
        "group_fractions": [],
        "action_counts": [],
        "episode_states": [],  # ŝ_t
        "group_probs": [],  # π(· | ŝ_t) that chose the episode's actions
        "hard_mass": [],  # π(hard groups | ŝ_t)
        "neutral_hard_mass": [],  # the hard groups' share of the permutations
    }


@dataclass
class TaskPolicyState:
    """Everything the callback tracks for one task; all of it goes into checkpoints."""

    sampler: Any
    learner: ReinforceLearner | None
    kmeans_generator: torch.Generator
    initial_learner: dict[str, Any] | None = None  # the learner before any update (replay)
    last_error: float | None = None  # the latest validation's error ...
    last_step: int | None = None  # ... and its step
    episode: dict[str, Any] | None = None  # the open episode (E_t, E_{t-1}, ŝ_t, bins)
    episodes: int = 0
    noise_test: dict[str, Any] | None = None
    history: dict[str, list[Any]] = field(default_factory=_new_history)

    _KEYS = ("initial_learner", "last_error", "last_step", "episode", "episodes", "noise_test")

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "learner": None if self.learner is None else self.learner.state_dict(),
            "kmeans_generator": self.kmeans_generator.get_state(),
            **{key: copy.deepcopy(getattr(self, key)) for key in self._KEYS},
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        if self.learner is not None and state["learner"] is not None:
            self.learner.load_state_dict(state["learner"])
        self.kmeans_generator.set_state(state["kmeans_generator"])
        for key in self._KEYS:
            setattr(self, key, state[key])
        self.history = {**_new_history(), **state["history"]}


class PermutationPolicyCallback(pl.Callback):
    """Runs the permutation policy of every active task and logs what it does."""

    def __init__(
        self,
        mode: str = "rl",
        interval: int = 2000,
        episode_steps: int = 100,
        num_groups: int = 10,
        hidden: int = 16,
        activation: str = "tanh",
        normalize_counts: bool = True,
        neutral_start: bool = True,
        floor: float = 0.0,
        samples_per_action: int = 1,
        reward_baseline: str = "scaled",
        kmeans_iters: int = 100,
        kmeans_inits: int = 10,
        learner: dict[str, Any] | None = None,
        errprop_floor: float = 0.1,
        noise_shuffles: int = 100,
        chunk_size: int | None = None,
        figure_every: int = 10,
        output_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"policy.mode must be one of {MODES}, got {mode!r}")
        if interval < 0 or episode_steps < 1:
            raise ValueError("policy.interval must be >= 0 and policy.episode_steps >= 1")
        span_ratio(reward_baseline, 1, 1)  # validates the name
        self.mode = mode
        self.interval = interval
        self.episode_steps = episode_steps
        self.num_groups = num_groups
        self.network_kwargs = {
            "num_groups": num_groups,
            "hidden": hidden,
            "activation": activation,
            "neutral_start": neutral_start,
            "floor": floor,
        }
        self.normalize_counts = normalize_counts
        self.samples_per_action = samples_per_action
        self.reward_baseline = reward_baseline
        self.kmeans_iters = kmeans_iters
        self.kmeans_inits = kmeans_inits
        self.learner_kwargs = dict(learner or {})
        self.errprop_floor = errprop_floor
        self.noise_shuffles = noise_shuffles
        self.chunk_size = chunk_size
        self.figure_every = figure_every
        self.output_dir = Path(output_dir) if output_dir else None
        self.seed = seed
        self.tasks: dict[str, TaskPolicyState] = {}
        self.validation_parts: dict[str, Tensor] = {}
        self._pending_state: dict[str, Any] | None = None

    @property
    def cycle(self) -> int:
        return self.interval + self.episode_steps

    # ----------------------------------------------------------------- set-up
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        for offset, task in enumerate(pl_module.schedule.tasks):
            if task not in self.tasks:
                self.tasks[task] = self._new_task_state(pl_module, task, offset, trainer)
            pl_module.samplers[task] = self.tasks[task].sampler
            parts = datamodule.policy_validation_parts(task)
            self.validation_parts[task] = parts.to(pl_module.device)
        if self._pending_state is not None:
            for task, state in self._pending_state.items():
                if task in self.tasks:
                    self.tasks[task].load_state_dict(state)
            self._pending_state = None

    def new_learner(self, offset: int) -> ReinforceLearner:
        """A fresh learner for the task at ``offset``: the same on every rank and every call."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + offset)
            policy = PolicyNetwork(**self.network_kwargs)
        return ReinforceLearner(policy, **self.learner_kwargs)

    def _new_task_state(
        self, module: pl.LightningModule, task: str, offset: int, trainer: pl.Trainer
    ) -> TaskPolicyState:
        num_perms = module.permutations[task].num_classes
        # Ranks draw different permutations; groups and π are kept identical (see _sync).
        seed = self.seed + 104_729 * (offset + 1) + 7 * trainer.global_rank
        learner = None
        if self.mode == "rl":
            sampler: Any = GroupPolicySampler(
                num_perms, self.num_groups, seed=seed, samples_per_action=self.samples_per_action
            )
            sampler.record_actions = False
            learner = self.new_learner(offset)
        elif self.mode == "errprop":
            sampler = ErrorProportionalSampler(num_perms, seed=seed, floor=self.errprop_floor)
        else:
            sampler = UniformSampler(num_perms, seed=seed)
        generator = torch.Generator().manual_seed(self.seed + 15_485_863 * (offset + 1))
        return TaskPolicyState(
            sampler=sampler,
            learner=learner,
            kmeans_generator=generator,
            initial_learner=None if learner is None else learner.state_dict(),
        )

    # ----------------------------------------------------------------- schedule
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        position = step % self.cycle
        for task in pl_module.schedule.active(step):
            state = self.tasks[task]
            if position == 0:
                s, error, permutation_errors = self._validate(trainer, pl_module, task, step)
                self._close_episode(trainer, task, state, step, error)
                if self.interval == 0:
                    self._start_episode(trainer, task, state, s, permutation_errors, error, step)
                else:
                    self._act_on_state(trainer, task, state, s, opening=False)
                state.last_error, state.last_step = error, step
            elif position == self.interval:
                s, error, permutation_errors = self._validate(trainer, pl_module, task, step)
                self._start_episode(trainer, task, state, s, permutation_errors, error, step)
                state.last_error, state.last_step = error, step

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # An episode still open stays open (and in the checkpoint): a resumed run finishes it
        # exactly as an uninterrupted run would.
        for task, state in self.tasks.items():
            if trainer.is_global_zero:
                self._run_noise_test(trainer, task, state)
            self._save_figures(trainer, task, state, trainer.global_step)

    def _start_episode(
        self,
        trainer: pl.Trainer,
        task: str,
        state: TaskPolicyState,
        s: Tensor,
        permutation_errors: Tensor,
        error: float,
        step: int,
    ) -> None:
        """Open episode t at E_t: π proposes its actions from ŝ_t; draws are recorded."""
        groups = self._act_on_state(trainer, task, state, s, opening=True)
        state.episode = {
            "error": error,
            "error_before": state.last_error,
            "steps_before": 0 if state.last_step is None else step - state.last_step,
            "bins": error_quantile_bins(permutation_errors, s.float().mean(dim=1).cpu()),
            "state": None if groups is None else groups.state.cpu(),
        }
        state.sampler.pop_draws()
        state.sampler.record_draws = True
        if groups is not None:
            state.sampler.pop_actions()
            state.sampler.record_actions = True

    def _close_episode(
        self, trainer: pl.Trainer, task: str, state: TaskPolicyState, step: int, new_error: float
    ) -> None:
        """Reward the finished episode (Eq. 7); in ``rl`` mode update π (Eq. 9)."""
        episode = state.episode
        if episode is None:
            return
        ratio = span_ratio(self.reward_baseline, self.episode_steps, episode["steps_before"])
        errors = [e for e in (episode["error_before"], episode["error"]) if e is not None]
        reward = extrapolated_reward(errors, new_error, ratio)
        draws = self._gather(trainer, state.sampler.pop_draws())
        state.sampler.record_draws = False
        history = state.history
        history["episode_steps"].append(step)
        history["episode_errors"].append([episode["error"], new_error])
        history["rewards"].append(reward)
        quantiles = bin_shares(draws, episode["bins"], FIG4_BINS)
        history["quantile_fractions"].append(quantiles)
        metrics = {
            f"policy/{task}/reward": reward,
            f"policy/{task}/error_before_episode": episode["error"],
            f"policy/{task}/error_after_episode": new_error,
            f"policy/{task}/hardest_quartile_share": quantiles[0],
        }
        if state.learner is not None:
            metrics.update(self._update_policy(trainer, task, state, episode["state"], reward))
        state.episodes += 1
        state.episode = None
        metrics[f"policy/{task}/episode"] = float(state.episodes)
        self._log(trainer, metrics, step)
        if self.figure_every and state.episodes % self.figure_every == 0:
            self._save_figures(trainer, task, state, step)

    def _update_policy(
        self, trainer: pl.Trainer, task: str, state: TaskPolicyState, s_hat: Tensor, reward: float
    ) -> dict[str, float]:
        assert state.learner is not None
        actions = self._gather(trainer, state.sampler.pop_actions())
        state.sampler.record_actions = False
        counts = torch.bincount(actions, minlength=self.num_groups)
        updates = state.learner.record(s_hat, actions, reward)
        history = state.history
        history["action_counts"].append(counts.tolist())
        history["group_fractions"].append((counts / counts.sum()).tolist())
        history["episode_states"].append(s_hat.tolist())
        metrics = {}
        for update in updates:
            metrics.update({f"policy/{task}/{k}": v for k, v in update.scalars().items()})
        return metrics

    # ----------------------------------------------------------------- state
    def _validate(
        self, trainer: pl.Trainer, module: pl.LightningModule, task: str, step: int
    ) -> tuple[Tensor, float, Tensor]:
        """Measure s on X_val (identical on every rank: rank 0's measurement is broadcast);
        returns s, E and the per-permutation error (CPU)."""
        s = module.validation_ratios(task, self.validation_parts[task], self.chunk_size)
        if trainer.world_size > 1:
            s = trainer.strategy.broadcast(s, src=0)
        error = float(error_rate(s))
        permutation_errors = per_permutation_error(s).cpu()
        state = self.tasks[task]
        state.history["validation_steps"].append(step)
        state.history["errors"].append(error)
        state.history["permutation_errors"].append(permutation_errors.half())
        self._log(trainer, {f"policy/{task}/validation_error": error}, step)
        if isinstance(state.sampler, ErrorProportionalSampler):
            state.sampler.set_errors(permutation_errors)
        return s, error, permutation_errors

    def _act_on_state(
        self, trainer: pl.Trainer, task: str, state: TaskPolicyState, s: Tensor, opening: bool
    ) -> GroupAssignment | None:
        """Regroup the permutations on the new state and set π(· | ŝ) as sampling distribution."""
        if state.learner is None:
            return None
        groups = group_permutations(
            s.cpu(),
            k=self.num_groups,
            generator=state.kmeans_generator,
            n_iter=self.kmeans_iters,
            n_init=self.kmeans_inits,
            normalize_counts=self.normalize_counts,
        )
        with torch.no_grad():
            probs = state.learner.policy.probabilities(groups.state).cpu()
        state.sampler.set_groups(groups.labels.cpu())
        state.sampler.set_group_probs(probs)
        if trainer.world_size > 1:
            self._check_ranks_agree(trainer, task, state, groups.labels.cpu(), probs)
        if opening:  # record the π that will act in the episode
            hard = hard_groups(self.num_groups)
            history = state.history
            history["group_probs"].append(probs.tolist())
            history["hard_mass"].append(float(probs[hard].sum()))
            history["neutral_hard_mass"].append(float(size_shares(groups.state)[hard].sum()))
        return groups

    @staticmethod
    def _check_ranks_agree(
        trainer: pl.Trainer, task: str, state: TaskPolicyState, labels: Tensor, probs: Tensor
    ) -> None:
        """Every rank must sample from the same groups and the same π; fail loudly if not."""
        assert state.learner is not None
        parameters = [p.detach().flatten().cpu() for p in state.learner.policy.parameters()]
        fingerprint = torch.cat(
            [labels.double(), probs.double(), *[p.double() for p in parameters]]
        )
        gathered = trainer.strategy.all_gather(fingerprint.to(trainer.strategy.root_device))
        if not torch.equal(gathered.min(dim=0).values, gathered.max(dim=0).values):
            raise RuntimeError(
                f"{task}: the permutation policy differs across ranks (groups, probabilities or "
                "policy weights); every rank must sample from the same π"
            )

    @staticmethod
    def _gather(trainer: pl.Trainer, values: Tensor) -> Tensor:
        """All ranks' values (actions, draws), so every rank makes the same update."""
        if trainer.world_size == 1:
            return values
        gathered = trainer.strategy.all_gather(values.to(trainer.strategy.root_device))
        return gathered.flatten().cpu()

    # ----------------------------------------------------------------- the noise test
    def _run_noise_test(self, trainer: pl.Trainer, task: str, state: TaskPolicyState) -> None:
        """Shuffled-reward replay: is π's mass on the hard groups beyond noise?"""
        history = state.history
        episodes = len(history["action_counts"])
        if state.initial_learner is None or episodes < 2 or self.noise_shuffles < 1:
            return
        offset = list(self.tasks).index(task)

        def fresh() -> ReinforceLearner:
            learner = self.new_learner(offset)
            learner.load_state_dict(state.initial_learner)
            return learner

        result = noise_test(
            fresh,
            torch.tensor(history["episode_states"]),
            torch.tensor(history["action_counts"]),
            history["rewards"],
            hard_groups(self.num_groups),
            shuffles=self.noise_shuffles,
            seed=self.seed + offset,
        )
        state.noise_test = result.as_dict()
        log.info(
            "%s policy vs shuffled rewards: excess mass on the hard groups %.4f "
            "(noise %.4f ± %.4f), p = %.3f over %d episodes",
            task,
            result.statistic,
            result.null_mean,
            result.null_std,
            result.p_value,
            episodes,
        )
        self._log(trainer, {f"policy/{task}/p_value_vs_noise": result.p_value}, trainer.global_step)

    def summary(self) -> dict[str, Any]:
        """Per task, what ``summary.json`` records of the policy."""
        result: dict[str, Any] = {}
        for task, state in self.tasks.items():
            history = state.history
            rewards = torch.tensor(history["rewards"], dtype=torch.float64)
            quantiles = torch.tensor(history["quantile_fractions"], dtype=torch.float64)
            entry: dict[str, Any] = {
                "mode": self.mode,
                "episodes": state.episodes,
                "reward_mean": float(rewards.mean()) if rewards.numel() else None,
                "reward_std": float(rewards.std()) if rewards.numel() > 1 else None,
                "hardest_quartile_share": float(quantiles[:, 0].mean()) if len(quantiles) else None,
                "p_value_vs_noise": None,
            }
            if state.noise_test is not None:
                entry["p_value_vs_noise"] = state.noise_test["p_value"]
                entry["hard_mass_excess"] = state.noise_test["statistic"]
                entry["hard_mass_excess_noise"] = [
                    state.noise_test["null_mean"],
                    state.noise_test["null_std"],
                ]
            result[task] = entry
        return result

    # ----------------------------------------------------------------- reporting
    @staticmethod
    def _log(trainer: pl.Trainer, metrics: dict[str, float], step: int) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    def _save_figures(
        self, trainer: pl.Trainer, task: str, state: TaskPolicyState, step: int
    ) -> None:
        if not trainer.is_global_zero or not state.history["permutation_errors"]:
            return
        history = state.history
        directory = (self.output_dir or Path(trainer.default_root_dir)) / "policy"
        figures = {
            f"{task}_permutation_error": permutation_error_heatmap(
                torch.stack(history["permutation_errors"]).float().numpy(),
                history["validation_steps"],
                title=f"{task}: validation error per permutation ({self.mode})",
            )
        }
        if history["quantile_fractions"]:
            figures[f"{task}_group_choices"] = fig4_figure(
                history, noise=state.noise_test, title=f"{task} ({self.mode})"
            )
        if history["group_fractions"]:
            figures[f"{task}_group_probs"] = policy_probability_figure(
                torch.tensor(history["group_probs"][: len(history["group_fractions"])]).numpy()
            )
        for name, figure in figures.items():
            path = save_png(figure, directory / f"{name}.png")
            log_figure(trainer.loggers, f"policy/{name}", path, step)

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"tasks": {task: state.state_dict() for task, state in self.tasks.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Applied in on_train_start, once the module's permutation sets exist.
        self._pending_state = state_dict["tasks"]
