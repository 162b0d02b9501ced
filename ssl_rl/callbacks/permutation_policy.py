"""The permutation policy as a Lightning callback: state, groups, episodes, REINFORCE updates.

Per task, training alternates two phases until the end [paper, Sect. 3.2]:

1. ``interval`` steps with π fixed: permutations are drawn from π at the current state.
2. An episode of ``episode_steps`` steps: validation gives ŝ_t and E_t, π proposes the K
   actions (one group per training sample), the network trains, validation gives E_{t+1},
   the reward r_t = E^BL_{t+1} − E_{t+1} updates π (Eq. 7, 9).

E_{t−1} is the previous validation, at the end of the last episode, ``interval`` steps before
E_t. The baseline extrapolates that trend linearly over the episode's length:
E^BL_{t+1} = E_t + (E_t − E_{t−1}) · episode_steps / interval, which is the paper's
2 E_t − E_{t−1} when both spans are equal [decision: extrapolating the whole fixed phase's
improvement onto a short episode would make every reward strongly negative]. It costs no
extra validation: two per cycle, as in the paper.

Modes: ``rl`` (the paper's policy), ``errprop`` (non-learned control: permutations drawn in
proportion to their validation error, same validations, no RL) and ``monitor`` (uniform
sampling; only measures, for the per-permutation error heatmap without policy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from ssl_rl.callbacks.image_logging import log_figure
from ssl_rl.callbacks.policy_figures import (
    group_choice_figure,
    permutation_error_heatmap,
    policy_probability_figure,
    save_png,
)
from ssl_rl.policy.groups import GroupAssignment, group_permutations
from ssl_rl.policy.measure import measure_ratio_matrix
from ssl_rl.policy.network import PolicyNetwork
from ssl_rl.policy.reinforce import ReinforceLearner
from ssl_rl.policy.reward import extrapolated_reward
from ssl_rl.policy.samplers import ErrorProportionalSampler, GroupPolicySampler, UniformSampler
from ssl_rl.policy.state import error_rate, per_permutation_error

log = logging.getLogger(__name__)

MODES = ("rl", "errprop", "monitor")


@dataclass
class TaskPolicyState:
    """Everything the callback tracks for one task; all of it goes into checkpoints."""

    sampler: Any
    learner: ReinforceLearner | None
    kmeans_generator: torch.Generator
    error_before: float | None = None  # E_{t−1}
    episode_error: float | None = None  # E_t
    episode_state: Tensor | None = None  # ŝ_t
    in_episode: bool = False
    episodes: int = 0
    history: dict[str, list[Any]] = field(
        default_factory=lambda: {
            "validation_steps": [],
            "errors": [],
            "permutation_errors": [],
            "episode_steps": [],
            "group_fractions": [],
            "group_probs": [],
            "rewards": [],
        }
    )

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.sampler.state_dict(),
            "learner": None if self.learner is None else self.learner.state_dict(),
            "kmeans_generator": self.kmeans_generator.get_state(),
            "error_before": self.error_before,
            "episode_error": self.episode_error,
            "episode_state": self.episode_state,
            "in_episode": self.in_episode,
            "episodes": self.episodes,
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        if self.learner is not None and state["learner"] is not None:
            self.learner.load_state_dict(state["learner"])
        self.kmeans_generator.set_state(state["kmeans_generator"])
        for key in ("error_before", "episode_error", "episode_state", "in_episode", "episodes"):
            setattr(self, key, state[key])
        self.history = state["history"]


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
        kmeans_iters: int = 100,
        kmeans_inits: int = 1,
        learner: dict[str, Any] | None = None,
        errprop_floor: float = 0.1,
        chunk_size: int | None = None,
        figure_every: int = 10,
        output_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"policy.mode must be one of {MODES}, got {mode!r}")
        if interval < 1 or episode_steps < 1:
            raise ValueError("policy.interval and policy.episode_steps must be >= 1")
        self.mode = mode
        self.interval = interval
        self.episode_steps = episode_steps
        self.num_groups = num_groups
        self.hidden = hidden
        self.activation = activation
        self.normalize_counts = normalize_counts
        self.kmeans_iters = kmeans_iters
        self.kmeans_inits = kmeans_inits
        self.learner_kwargs = dict(learner or {})
        self.errprop_floor = errprop_floor
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

    def _new_task_state(
        self, module: pl.LightningModule, task: str, offset: int, trainer: pl.Trainer
    ) -> TaskPolicyState:
        num_perms = module.permutations[task].num_classes
        # Ranks draw different permutations; groups and π are kept identical (see _sync).
        seed = self.seed + 104_729 * (offset + 1) + 7 * trainer.global_rank
        learner = None
        if self.mode == "rl":
            sampler: Any = GroupPolicySampler(num_perms, self.num_groups, seed=seed)
            sampler.record_actions = False
            # Same initial π on every rank, without touching the global RNG stream.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + offset)
                policy = PolicyNetwork(self.num_groups, self.hidden, activation=self.activation)
            learner = ReinforceLearner(policy, **self.learner_kwargs)
        elif self.mode == "errprop":
            sampler = ErrorProportionalSampler(num_perms, seed=seed, floor=self.errprop_floor)
        else:
            sampler = UniformSampler(num_perms, seed=seed)
        generator = torch.Generator().manual_seed(self.seed + 15_485_863 * (offset + 1))
        return TaskPolicyState(sampler=sampler, learner=learner, kmeans_generator=generator)

    # ----------------------------------------------------------------- schedule
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        position = step % self.cycle
        for task in pl_module.schedule.active(step):
            state = self.tasks[task]
            if position == 0:
                s, error = self._validate(trainer, pl_module, task, step)
                self._close_episode(trainer, task, state, step, error)
                self._act_on_state(trainer, task, state, s)
                state.error_before = error
            if position == self.interval:
                s, error = self._validate(trainer, pl_module, task, step)
                self._start_episode(trainer, task, state, s, error)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # An episode still open stays open (and in the checkpoint): a resumed run finishes it
        # exactly as an uninterrupted run would.
        for task, state in self.tasks.items():
            self._save_figures(trainer, task, state, trainer.global_step)

    def _start_episode(
        self, trainer: pl.Trainer, task: str, state: TaskPolicyState, s: Tensor, error: float
    ) -> None:
        """ŝ_t from the fresh state; π proposes the episode's actions from here on."""
        groups = self._act_on_state(trainer, task, state, s)
        if groups is None:
            return
        state.episode_error = error
        state.episode_state = groups.state.cpu()
        state.sampler.pop_actions()
        state.sampler.record_actions = True
        state.in_episode = True

    def _close_episode(
        self, trainer: pl.Trainer, task: str, state: TaskPolicyState, step: int, new_error: float
    ) -> None:
        """Reward the finished episode's actions (Eq. 7) and update π (Eq. 9)."""
        if not state.in_episode or state.learner is None:
            return
        assert state.episode_error is not None and state.episode_state is not None
        errors = [state.episode_error]
        if state.error_before is not None:
            errors.insert(0, state.error_before)
        # E_{t-1} -> E_t spans `interval` steps, the episode `episode_steps`.
        reward = extrapolated_reward(errors, new_error, self.episode_steps / self.interval)
        actions = self._gather_actions(trainer, state.sampler.pop_actions())
        state.sampler.record_actions = False
        updates = state.learner.record(state.episode_state, actions, reward)
        counts = torch.bincount(actions, minlength=self.num_groups).float()
        state.history["episode_steps"].append(step)
        state.history["group_fractions"].append((counts / counts.sum()).tolist())
        state.history["rewards"].append(reward)
        state.episodes += 1
        state.in_episode = False
        state.error_before = None
        metrics = {
            f"policy/{task}/reward": reward,
            f"policy/{task}/error_before_episode": state.episode_error,
            f"policy/{task}/error_after_episode": new_error,
            f"policy/{task}/episode": float(state.episodes),
        }
        for update in updates:
            metrics.update({f"policy/{task}/{k}": v for k, v in update.scalars().items()})
        self._log(trainer, metrics, step)
        if self.figure_every and state.episodes % self.figure_every == 0:
            self._save_figures(trainer, task, state, step)

    # ----------------------------------------------------------------- state
    def _validate(
        self, trainer: pl.Trainer, module: pl.LightningModule, task: str, step: int
    ) -> tuple[Tensor, float]:
        """Measure s on X_val; identical on every rank (rank 0's measurement is broadcast)."""
        s = measure_ratio_matrix(module, task, self.validation_parts[task], self.chunk_size)
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
        return s, error

    def _act_on_state(
        self, trainer: pl.Trainer, task: str, state: TaskPolicyState, s: Tensor
    ) -> GroupAssignment | None:
        """Regroup the permutations on the new state and set π(· | ŝ) as sampling distribution."""
        if state.learner is None:
            return None
        groups = group_permutations(
            s.float().cpu(),
            k=self.num_groups,
            generator=state.kmeans_generator,
            n_iter=self.kmeans_iters,
            n_init=self.kmeans_inits,
            normalize_counts=self.normalize_counts,
        )
        with torch.no_grad():
            probs = state.learner.policy.distribution(groups.state).probs
        state.sampler.set_groups(groups.labels)
        state.sampler.set_group_probs(probs)
        state.history["group_probs"].append(probs.tolist())
        if trainer.world_size > 1:
            self._check_ranks_agree(trainer, task, state, groups.labels, probs)
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
    def _gather_actions(trainer: pl.Trainer, actions: Tensor) -> Tensor:
        """All ranks' actions, so every rank makes the same policy update."""
        if trainer.world_size == 1:
            return actions
        gathered = trainer.strategy.all_gather(actions.to(trainer.strategy.root_device))
        return gathered.flatten().cpu()

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
        directory = self.output_dir or Path(trainer.default_root_dir)
        directory = directory / "policy"
        figures = {
            f"{task}_permutation_error": permutation_error_heatmap(
                torch.stack(state.history["permutation_errors"]).float().numpy(),
                state.history["validation_steps"],
                title=f"{task}: validation error per permutation ({self.mode})",
            )
        }
        if state.history["group_fractions"]:
            figures[f"{task}_group_choices"] = group_choice_figure(
                torch.tensor(state.history["group_fractions"]).numpy(),
                title=f"{task}: permutations chosen per episode, by difficulty",
            )
        if state.history["group_probs"]:
            figures[f"{task}_group_probs"] = policy_probability_figure(
                torch.tensor(state.history["group_probs"]).numpy()
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
