"""The pretraining LightningModule: one shared trunk, one ordering head per task."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypedDict, cast

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from ssl_rl.eval.pretrained import trunk_config
from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.nets.compilation import compile_in_place
from ssl_rl.nets.order_head import OrderHead
from ssl_rl.optimization import with_step_scheduler
from ssl_rl.permutations import PermutationSet
from ssl_rl.phase_reset import FreshOptimization
from ssl_rl.policy.samplers import PermutationSampler, UniformSampler
from ssl_rl.policy.state import softmax_ratio
from ssl_rl.schedule import TaskSchedule
from ssl_rl.tasks import ClassSet, PretextTask


class OrderingPretrainer(pl.LightningModule):
    """Shared CaffeNet trunk trained on permutation classification for each active task.

    Batches arrive unpermuted as ``{task: (B, n, C, h, w)}``; per task a sampler draws
    permutation classes, the parts are shuffled on the device, and the head predicts the
    class. Samplers are uniform by default; the policy callback swaps in its own.
    """

    def __init__(
        self,
        trunk: CaffeNetTrunk,
        tasks: Mapping[str, PretextTask],
        schedule: Mapping[str, Any],
        optimizer: partial[torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        seed: int = 0,
        channels_last: bool = False,
        compile_mode: str | None = None,
    ) -> None:
        super().__init__()
        schedule = _to_container(schedule)
        self.save_hyperparameters(ignore=["trunk", "tasks", "optimizer", "scheduler"])
        self.schedule = TaskSchedule.build(**schedule)
        self.tasks: dict[str, PretextTask] = {}
        self.trunk = trunk
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.heads = nn.ModuleDict()
        # Each task's classes (Ψ for the ordering tasks); a buffer holder, so in checkpoints.
        self.permutations = nn.ModuleDict()
        self.samplers: dict[str, PermutationSampler] = {}
        # The training metrics last sent to the loggers (see _log_train_metrics).
        self.logged_train_metrics: dict[str, float] = {}
        # This step's loss per task, for the divergence guard's message.
        self.step_losses: dict[str, Tensor] = {}
        # The optimisers and lr schedulers as built, put back at each phase start (S&T).
        self._fresh_optimization: FreshOptimization | None = None
        for offset, name in enumerate(self.schedule.tasks):
            if name not in tasks:
                raise ValueError(f"task {name!r} is scheduled but the run defines no such task")
            task = self.tasks[name] = tasks[name]
            self.permutations[name] = task.classes
            self.heads[name] = task.build_head(trunk.output_dim(task.part_size))
            self.samplers[name] = UniformSampler(task.num_classes, seed=seed + 7919 * (offset + 1))
        self.channels_last = channels_last
        if channels_last:
            trunk.to(memory_format=torch.channels_last)
        if compile_mode is not None:
            compile_in_place([trunk, *self.heads.values()], compile_mode)

    # ----------------------------------------------------------------- forward parts
    def part_embeddings(self, parts: Tensor) -> Tensor:
        """Trunk on every part independently: (B, n, C, h, w) -> (B, n, D) flattened pool5."""
        b, n = parts.shape[:2]
        images = parts.flatten(0, 1)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        pool5: Tensor = self.trunk(images)
        return pool5.flatten(1).view(b, n, -1)

    def _head(self, task: str) -> OrderHead:
        # ModuleDict items are typed nn.Module; every task's head is an OrderHead (tasks.py).
        return cast(OrderHead, self.heads[task])

    def _classes(self, task: str) -> ClassSet:
        # ModuleDict items are typed nn.Module; each task's classes are a ClassSet (tasks.py).
        return cast(ClassSet, self.permutations[task])

    def _permutation_set(self, task: str) -> PermutationSet:
        # Only the ordering tasks reach here (their classes are Ψ).
        return cast(PermutationSet, self.permutations[task])

    def forward(self, task: str, shuffled_parts: Tensor) -> Tensor:
        """Permutation-class logits for parts already in shuffled order."""
        logits: Tensor = self._head(task)(self.part_embeddings(shuffled_parts))
        return logits

    def part_features(self, task: str, parts: Tensor) -> Tensor:
        """Permutation-independent per-part features (trunk + fc6), for all-ψ scoring."""
        return self._head(task).part_features(self.part_embeddings(parts))

    def score_all_permutations(self, task: str, parts: Tensor, chunk_size: int = 64) -> Tensor:
        """Logits (V, |Ψ|, |Ψ|) for every sample shuffled by every ψ, from one trunk pass."""
        features = self.part_features(task, parts)
        return self._head(task).score_all_orders(
            features, self._permutation_set(task).perms, chunk_size=chunk_size
        )

    @torch.no_grad()
    def validation_ratios(self, task: str, parts: Tensor, chunk_size: int | None = None) -> Tensor:
        """The policy's state s (K, V) on the unpermuted ``parts``: for every class k and
        sample, the softmax ratio of Eq. 6 with the sample transformed by k.

        Ordering tasks: the trunk and fc6 see each part once; only the order-dependent head
        runs per ψ, in chunks of orders, each reduced to softmax ratios at once so (V, |Ψ|, |Ψ|)
        logits never exist. Other classes (rotations): one forward pass per class. Runs in
        eval mode (BN running statistics, no dropout) and restores the mode.
        """
        was_training = self.training
        self.eval()
        try:
            classes, head = self._classes(task), self.heads[task]
            if isinstance(classes, PermutationSet) and isinstance(head, OrderHead):
                return self._order_ratios(task, parts, chunk_size)
            rows = []
            for k in range(classes.num_classes):
                idx = torch.full((parts.shape[0],), k, dtype=torch.long, device=parts.device)
                probs = self(task, classes.transform(parts, idx)).float().softmax(dim=-1)
                rows.append(softmax_ratio(probs, idx))
            return torch.stack(rows)
        finally:
            self.train(was_training)

    def _order_ratios(self, task: str, parts: Tensor, chunk_size: int | None) -> Tensor:
        features = self.part_features(task, parts)
        perms = self._permutation_set(task).perms
        s = torch.empty(perms.shape[0], parts.shape[0], device=parts.device)
        for indices, logits in self._head(task).iter_order_logits(features, perms, chunk_size):
            probs = logits.float().softmax(dim=-1)  # (V, Qc, C)
            target = indices.to(parts.device).repeat(parts.shape[0])
            ratios = softmax_ratio(probs.flatten(0, 1), target).view(parts.shape[0], -1)
            s[indices.to(parts.device)] = ratios.T
        return s

    def count_step_flops(self, batch: Mapping[str, Tensor]) -> int:
        """Forward + backward FLOPs of one training step on ``batch``'s shapes (torch's
        ``FlopCounterMode``), run on meta copies of the weights: nothing is computed, and no
        weight, statistic or random number of the real run changes."""
        state = {
            name: torch.empty_like(value, device="meta").requires_grad_(value.requires_grad)
            for name, value in [*self.named_parameters(), *self.named_buffers()]
        }
        counter = FlopCounterMode(display=False)
        with counter, torch.compiler.set_stance("force_eager"):
            total: Tensor | None = None
            for task, parts in batch.items():
                meta_parts = torch.empty_like(parts, device="meta")
                idx = torch.zeros(parts.shape[0], dtype=torch.long, device="meta")
                logits = functional_call(self, state, (task, meta_parts))
                loss = F.cross_entropy(logits, idx)
                total = loss if total is None else total + loss
            if total is not None:
                total.backward()
        return int(counter.get_total_flops())

    # ----------------------------------------------------------------- training
    def _task_loss(
        self, task: str, parts: Tensor, idx: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        logits = self(task, self._classes(task).transform(parts, idx, generator=generator))
        loss = F.cross_entropy(logits, idx)
        accuracy = (logits.argmax(dim=1) == idx).float().mean()
        return loss, accuracy

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        total: Tensor | None = None
        metrics: dict[str, Tensor] = {}
        self.step_losses = {}
        for task, parts in batch.items():
            idx = self.samplers[task].draw(parts.shape[0], parts.device)
            loss, accuracy = self._task_loss(task, parts, idx)
            weight = self.tasks[task].loss_weight
            total = weight * loss if total is None else total + weight * loss
            metrics[f"train/{task}/loss"] = self.step_losses[task] = loss.detach()
            metrics[f"train/{task}/acc"] = accuracy
        if total is None:
            raise RuntimeError("training batch holds no task; check schedule.tasks and the data")
        metrics["train/loss"] = total.detach()
        self._log_train_metrics(metrics)
        return total

    def _log_train_metrics(self, metrics: dict[str, Tensor]) -> None:
        """Log this step's metrics only for the tasks that trained in it.

        ``self.log`` would re-log a task's last value at every later step (the training
        results are only reset at epoch ends, and training here is one endless epoch), so in
        S&T the finished phase's metrics would appear to go on; loggers get them directly.
        """
        self.log_dict(metrics, prog_bar=True, logger=False, batch_size=1)
        trainer = self._trainer
        if trainer is None:
            return
        step = trainer.global_step
        last = step + 1 >= (trainer.max_steps if trainer.max_steps > 0 else step + 1)
        # Lightning sets log_every_n_steps on the trainer in its logger connector, undeclared.
        if step % trainer.log_every_n_steps and not last:  # type: ignore[attr-defined]
            return
        # One device-to-host read for all of them (each float() would synchronise).
        read = torch.stack([value.detach().float() for value in metrics.values()]).tolist()
        values = dict(zip(metrics, read, strict=True))
        self.logged_train_metrics = values
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(values, step=step)

    def validation_step(self, batch: Tensor, batch_idx: int, dataloader_idx: int = 0) -> None:
        task = self.schedule.tasks[dataloader_idx]
        # Fixed permutation per validation sample, so runs and epochs are comparable.
        generator = torch.Generator().manual_seed(1_000_003 * (dataloader_idx + 1) + batch_idx)
        num_classes = self._classes(task).num_classes
        idx = torch.randint(num_classes, (batch.shape[0],), generator=generator).to(batch.device)
        loss, accuracy = self._task_loss(task, batch, idx, generator=generator)
        log: _ValidationLogOptions = {
            "batch_size": batch.shape[0],
            "add_dataloader_idx": False,
            "sync_dist": True,
        }
        self.log(f"val/{task}/loss", loss, **log)
        self.log(f"val/{task}/acc", accuracy, prog_bar=True, **log)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The trunk at the base learning rate, each head at ``lr_scale`` times it."""
        base_lr = float(self.optimizer_factory.keywords.get("lr", 0.0))
        groups: list[dict[str, Any]] = [{"params": list(self.trunk.parameters()), "name": "trunk"}]
        for task, head in self.heads.items():
            group: dict[str, Any] = {"params": list(head.parameters()), "name": f"head_{task}"}
            scale = self.tasks[task].lr_scale
            if scale != 1.0:
                group["lr"] = base_lr * scale
            groups.append(group)
        return groups

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameter_groups())
        return with_step_scheduler(optimizer, self.scheduler_factory)

    # ----------------------------------------------------------------- phases
    def on_fit_start(self) -> None:
        # Runs before a checkpoint is restored, so this is the state before any step.
        trainer = self.trainer
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        self._fresh_optimization = FreshOptimization.capture(trainer.optimizers, schedulers)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """At a phase start of S&T: fresh optimiser state and lr schedule (see TaskSchedule)."""
        trainer = self.trainer
        step = trainer.global_step
        if not self.schedule.resets_optimizer_at(step):
            return
        if self._fresh_optimization is None:
            raise RuntimeError("on_fit_start did not record the optimisers before training")
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        self._fresh_optimization.restore(trainer.optimizers, schedulers)
        rank_zero_info(f"step {step}: {self.schedule.active(step)} phase starts, optimiser reset")

    # ----------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if isinstance(self.trunk, CaffeNetTrunk):  # finetune.py names it in shape errors
            checkpoint["trunk_config"] = trunk_config(self.trunk)
        checkpoint["samplers"] = {
            t: {"class": type(s).__name__, "state": s.state_dict()}
            for t, s in self.samplers.items()
        }
        # Dropout draws from the global RNG: restoring it makes a resumed run continue exactly.
        checkpoint["rng_state"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_state"]["cuda"] = torch.cuda.get_rng_state_all()
        logger = self.logger
        run_id = getattr(getattr(logger, "experiment", None), "id", None) if logger else None
        if isinstance(run_id, str):
            checkpoint["wandb_run_id"] = run_id

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = checkpoint.get("rng_state", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        # The policy callback restores its own samplers; uniform ones are restored here.
        for task, saved in checkpoint.get("samplers", {}).items():
            sampler = self.samplers.get(task)
            if sampler is not None and type(sampler).__name__ == saved["class"]:
                sampler.load_state_dict(saved["state"])


class _ValidationLogOptions(TypedDict):
    """The ``self.log`` options shared by the validation metrics."""

    batch_size: int
    add_dataloader_idx: bool
    sync_dist: bool


def _to_container(value: Any) -> dict[str, Any]:
    if isinstance(value, DictConfig):
        value = OmegaConf.to_container(value, resolve=True)
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in dict(value).items()}
