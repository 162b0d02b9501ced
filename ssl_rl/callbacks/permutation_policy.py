"""The permutation policy as a Lightning callback: wires each task's policy into training.

The episode logic, rewards and modes live in ``ssl_rl.policy`` (:class:`TaskPolicy`, one per
task, and ``ssl_rl.policy.modes``). This callback creates them at train start and installs
their samplers in the module, validates through the module's ``validation_ratios``, shares
measurements across DDP ranks, logs metrics and figures, and saves and restores the
policies with the trainer's checkpoints.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import pytorch_lightning as pl
import torch
from torch import Tensor

from ssl_rl.callbacks.divergence import diverged
from ssl_rl.callbacks.in_loop_evaluation import evaluation_in_training
from ssl_rl.callbacks.lightning_communicator import LightningCommunicator
from ssl_rl.figures.image_logging import log_figure
from ssl_rl.figures.policy import (
    fig4_figure,
    permutation_error_heatmap,
    policy_probability_figure,
    save_png,
)
from ssl_rl.policy.episodes import Metrics, TaskPolicy
from ssl_rl.policy.modes import ModeSettings, check_mode, make_mode
from ssl_rl.policy.reward import span_ratio
from ssl_rl.policy.samplers import PermutationSampler
from ssl_rl.policy.seeds import TaskSeeds
from ssl_rl.policy.timing import EpisodeTiming

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ssl_rl.schedule import TaskSchedule
    from ssl_rl.tasks import PretextTask


class PolicyHost(Protocol):
    """What the callback uses of the Lightning module (``ssl_rl.module``)."""

    schedule: TaskSchedule
    tasks: Mapping[str, PretextTask]
    permutations: Any  # task -> permutation set with ``num_classes``
    samplers: dict[str, PermutationSampler]
    device: torch.device

    def validation_ratios(
        self, task: str, parts: Tensor, chunk_size: int | None = None
    ) -> Tensor: ...


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
        credit: dict[str, Any] | None = None,
        noise_shuffles: int = 100,
        chunk_size: int | None = None,
        figure_every: int = 10,
        output_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        check_mode(mode)
        self.timing = EpisodeTiming(interval, episode_steps)
        span_ratio(reward_baseline, 1, 1)  # validates the name
        self.mode = mode
        self.settings = ModeSettings(
            num_groups=num_groups,
            hidden=hidden,
            activation=activation,
            neutral_start=neutral_start,
            floor=floor,
            normalize_counts=normalize_counts,
            samples_per_action=samples_per_action,
            kmeans_iters=kmeans_iters,
            kmeans_inits=kmeans_inits,
            learner=dict(learner or {}),
            errprop_floor=errprop_floor,
            credit=dict(credit or {}),
        )
        self.reward_baseline = reward_baseline
        self.noise_shuffles = noise_shuffles
        self.chunk_size = chunk_size
        self.figure_every = figure_every
        self.output_dir = Path(output_dir) if output_dir else None
        self.seed = seed
        self.tasks: dict[str, TaskPolicy] = {}
        self.validation_parts: dict[str, Tensor] = {}
        self._comm = LightningCommunicator()
        self._pending_state: dict[str, Any] | None = None

    @property
    def cycle(self) -> int:
        return self.timing.cycle

    # ----------------------------------------------------------------- set-up
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._comm.trainer = trainer
        module = cast(PolicyHost, pl_module)
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        for offset, task in enumerate(module.schedule.tasks):
            if task not in self.tasks:
                settings = self.settings.for_task(
                    module.tasks[task].policy, module.permutations[task].num_classes
                )
                self.tasks[task] = self._new_policy(
                    task,
                    offset,
                    settings,
                    module.permutations[task].num_classes,
                    trainer.global_rank,
                )
            module.samplers[task] = self.tasks[task].sampler
            parts = datamodule.policy_validation_parts(task)
            self.validation_parts[task] = parts.to(module.device)
        if self._pending_state is not None:
            for task, state in self._pending_state.items():
                if task in self.tasks:
                    self.tasks[task].load_state_dict(state)
            self._pending_state = None

    def _new_policy(
        self, task: str, offset: int, settings: ModeSettings, num_perms: int, rank: int
    ) -> TaskPolicy:
        seeds = TaskSeeds.derive(self.seed, offset, rank)
        mode = make_mode(self.mode, settings, num_perms, seeds, self._comm)
        return TaskPolicy(
            task,
            mode,
            self.timing,
            reward_baseline=self.reward_baseline,
            noise_seed=seeds.noise,
            comm=self._comm,
        )

    # ----------------------------------------------------------------- training
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        module = cast(PolicyHost, pl_module)
        if self.timing.phase(step) is None:
            return
        # Validation, grouping, the update and figures are not training time.
        with evaluation_in_training(trainer):
            for task in module.schedule.active(step):
                policy = self.tasks[task]
                measure = functools.partial(
                    self._measure, trainer, pl_module, task, self.validation_parts[task]
                )
                report = policy.on_step(step, measure)
                for metrics in report.metrics:
                    self._log(trainer, metrics, step)
                if report.episode_closed and self._figures_due(policy):
                    self._save_figures(trainer, task, policy, step)

    def _measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, task: str, parts: Tensor
    ) -> Tensor:
        """The policy state s of ``task``; a non-finite one stops the run (divergence)."""
        s = cast(PolicyHost, pl_module).validation_ratios(task, parts, self.chunk_size)
        if not bool(torch.isfinite(s).all()):
            bad = s[~torch.isfinite(s)][0].item()
            raise diverged(trainer, pl_module, trainer.global_step, task, bad, "policy state s")
        return s

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # An episode still open stays open (and in the checkpoint): a resumed run finishes it
        # exactly as an uninterrupted run would.
        for task, policy in self.tasks.items():
            if trainer.is_global_zero:
                metrics = policy.run_noise_test(self.noise_shuffles)
                if metrics:
                    self._log(trainer, metrics, trainer.global_step)
            self._save_figures(trainer, task, policy, trainer.global_step)

    def summary(self) -> dict[str, Any]:
        """Per task, what ``summary.json`` records of the policy."""
        return {task: policy.summary() for task, policy in self.tasks.items()}

    # ----------------------------------------------------------------- reporting
    @staticmethod
    def _log(trainer: pl.Trainer, metrics: Metrics, step: int) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    def _figures_due(self, policy: TaskPolicy) -> bool:
        return bool(self.figure_every) and policy.episodes % self.figure_every == 0

    def _save_figures(self, trainer: pl.Trainer, task: str, policy: TaskPolicy, step: int) -> None:
        history = policy.history
        if not trainer.is_global_zero or not history["permutation_errors"]:
            return
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
                history, noise=policy.noise_test, title=f"{task} ({self.mode})"
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
        return {"tasks": {task: policy.state_dict() for task, policy in self.tasks.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Applied in on_train_start, once the module's permutation sets exist.
        self._pending_state = state_dict["tasks"]
