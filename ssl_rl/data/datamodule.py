"""The pretraining datamodule: one endless loader per task, plus the validation sets."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from ssl_rl.data.endless_sampling import EndlessShuffleSampler, SeededDraws
from ssl_rl.data.scheduled_loader import ScheduledTaskLoader
from ssl_rl.data.worker_deaths import is_worker_death
from ssl_rl.data.worker_signals import ignore_stop_signals
from ssl_rl.schedule import TaskSchedule
from ssl_rl.tasks import PretextData, PretextTask

log = logging.getLogger(__name__)


class OrderingDataModule(pl.LightningDataModule):
    """Unpermuted parts for each scheduled task: ``{task: batch}`` per step, each batch the
    loader workers' uint8 samples that the task's ``pretext.finish`` turns into float parts
    (B, n, C, h, w) on the device (:meth:`on_after_batch_transfer`).

    From every task's training samples ``policy_holdout`` are set aside (always, so runs
    with and without the policy train on the same data) as the policy's fixed X_val.
    Pretext validation uses the dataset's own validation/test split (``pretext.val_views``
    fixed views of each sample, e.g. several clips per test video so that one video is not a
    large step of the accuracy on a small split), at most ``val_samples`` per task, evenly spaced.
    ``prepare`` (e.g. the demo data generator, from ``datasets.generate``) runs once before the
    datasets are read. ``device_stage``: where the pretext transforms' batched second stage
    runs: ``device`` (after the transfer, on the GPU), ``workers`` (in the loader workers, as
    float batches) or ``auto``: the device unless training runs on the CPU, where the workers
    run it beside the training process.
    """

    def __init__(
        self,
        tasks: Mapping[str, PretextTask],
        schedule: Mapping[str, Any],
        batch_size: int = 256,
        num_workers: int = 4,
        policy_holdout: int = 100,
        val_samples: int | None = 1000,
        val_batch_size: int | None = None,
        prepare: Callable[[], Any] | None = None,
        seed: int = 0,
        pin_memory: bool = True,
        device_stage: str = "auto",
        worker_restarts: int = 0,
    ) -> None:
        super().__init__()
        self.pretext_tasks = dict(tasks)
        self.schedule = TaskSchedule.build(**_plain(schedule))
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.policy_holdout = policy_holdout
        self.val_samples = val_samples
        self.prepare = prepare
        self.seed = seed
        self.pin_memory = pin_memory
        if device_stage not in ("auto", "device", "workers"):
            raise ValueError(f"data.device_stage must be auto, device or workers: {device_stage!r}")
        self.device_stage = device_stage
        self.worker_restarts = worker_restarts
        self.worker_restarts_used = 0
        self._is_set_up = False
        # Each task's pretext data as this run places its second stage (see `setup`).
        self.pretexts: dict[str, PretextData] = {}
        self.train_sets: dict[str, Subset[dict[str, Tensor]]] = {}
        self.val_sets: dict[str, Subset[dict[str, Tensor]]] = {}
        self.policy_sets: dict[str, Subset[dict[str, Tensor]]] = {}

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.schedule.tasks

    def prepare_data(self) -> None:
        if self.prepare is not None:
            self.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self._is_set_up:
            return
        for offset, task in enumerate(self.tasks):
            if task not in self.pretext_tasks:
                raise ValueError(f"task {task!r} is scheduled but the run defines no such task")
            pretext = self.pretext_tasks[task].pretext.placed(not self.finishes_in_workers())
            self.pretexts[task] = pretext
            train_samples, val_samples = self.pretext_tasks[task].reader.samples(
                config_key=f"tasks.{task}.reader"
            )
            seed = self.seed + 1009 * (offset + 1)
            holdout, train = _split_holdout(len(train_samples), self.policy_holdout, seed)
            self.train_sets[task] = Subset(
                pretext.dataset(train_samples, train=True, seed=seed), train
            )
            self.policy_sets[task] = Subset(
                pretext.dataset(train_samples, train=False, seed=seed), holdout
            )
            val = pretext.dataset(val_samples, train=False, seed=seed, views=pretext.val_views)
            # torch's Dataset declares no __len__; every pretext's dataset has one.
            size = len(val)  # type: ignore[arg-type]
            self.val_sets[task] = Subset(val, _evenly_spaced(size, self.val_samples))
            log.info(
                "%s: %d training samples, %d held out for the policy, %d for validation",
                task,
                len(train),
                len(holdout),
                len(self.val_sets[task]),
            )
        self._is_set_up = True

    # ----------------------------------------------------------------- loaders
    def train_dataloader(self) -> ScheduledTaskLoader:
        rank, world = self._rank_and_world()
        samplers, loaders = {}, {}
        for offset, task in enumerate(self.tasks):
            dataset = self.train_sets[task]
            samplers[task] = EndlessShuffleSampler(
                len(dataset), seed=self.seed + 31 * offset, rank=rank, world_size=world
            )
            loaders[task] = self._loader(
                SeededDraws(dataset),
                self.batch_size,
                task,
                sampler=samplers[task],
                drop_last=True,
            )
        trainer = self.trainer
        accumulate = trainer.accumulate_grad_batches if trainer is not None else 1

        def seek(step: int, micro: int = 0) -> None:
            # Skip the draws consumed before (step, micro) so the data continues exactly.
            for task, sampler in samplers.items():
                batches = self.schedule.steps_active(task, step) * accumulate
                batches += micro if task in self.schedule.active(step) else 0
                sampler.start = batches * self.batch_size

        def start_step() -> int:
            step = trainer.global_step if trainer is not None else 0  # > 0 on resume
            seek(step)
            return step

        def restart(step: int, micro: int, error: BaseException) -> bool:
            if not is_worker_death(error) or self.worker_restarts_used >= self.worker_restarts:
                return False
            self.worker_restarts_used += 1
            log.warning(
                "%s at step %d: new loader workers, same data from there on "
                "(restart %d of data.worker_restarts=%d)",
                error,
                step,
                self.worker_restarts_used,
                self.worker_restarts,
            )
            seek(step, micro)
            return True

        return ScheduledTaskLoader(
            loaders,
            active_tasks=self.schedule.active,
            start_step=start_step,
            accumulate_grad_batches=accumulate,
            restart=restart,
        )

    def val_dataloader(self) -> list[DataLoader[object]]:
        return [self._loader(self.val_sets[t], self.val_batch_size, t) for t in self.tasks]

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """Lightning's transfer, except the entries each task's ``finish`` reads on the host
        (e.g. packed JPEG bytes for the device's decoder), which stay where they are."""
        trainer = self.trainer
        if trainer is not None and not trainer.training:
            return self._transfer(self.tasks[dataloader_idx], batch, device, dataloader_idx)
        return {
            task: self._transfer(task, samples, device, dataloader_idx)
            for task, samples in batch.items()
        }

    def _transfer(self, task: str, samples: Any, device: torch.device, index: int) -> Any:
        host_keys = self._pretext(task).host_keys if isinstance(samples, dict) else ()
        if not host_keys:
            return super().transfer_batch_to_device(samples, device, index)
        staying = {key: samples[key] for key in host_keys if key in samples}
        moving = {key: value for key, value in samples.items() if key not in staying}
        return super().transfer_batch_to_device(moving, device, index) | staying

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """The device stage of the pretext transforms: workers' uint8 samples → float parts.

        Training batches are ``{task: samples}``, validation batches one task's samples (the
        task by dataloader index). Float tensors (already finished) pass through.
        """
        trainer = self.trainer
        if trainer is not None and not trainer.training:
            return self.finish_parts(self.tasks[dataloader_idx], batch)
        return {task: self.finish_parts(task, samples) for task, samples in batch.items()}

    def finish_parts(self, task: str, samples: Any) -> Tensor:
        """Float parts (B, n, C, h, w) of a collated batch of ``task``'s worker samples."""
        if isinstance(samples, Tensor):
            return samples
        return self._pretext(task).finish(samples)

    def policy_validation_parts(self, task: str) -> Tensor:
        """The policy's fixed X_val for ``task`` as one float tensor (|X_val|, n, C, h, w)."""
        dataset = self.policy_sets[task]
        pretext = self._pretext(task)
        return pretext.finish(pretext.collate([dataset[i] for i in range(len(dataset))]))

    def finishes_in_workers(self) -> bool:
        """Whether the loader workers also run the device stage (see ``device_stage``)."""
        if self.device_stage != "auto":
            return self.device_stage == "workers"
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        return device.type == "cpu"

    def _loader(
        self,
        dataset: Dataset[object],
        batch_size: int,
        task: str,
        sampler: EndlessShuffleSampler | None = None,
        drop_last: bool = False,
    ) -> DataLoader[object]:
        pretext = self._pretext(task)
        collate: Callable[[Any], Any] = pretext.collate
        if self.finishes_in_workers():
            collate = partial(_collate_and_finish, pretext)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            drop_last=drop_last,
            collate_fn=collate,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=ignore_stop_signals,
            # Worker base seeds come from this generator, not the global RNG, which stays
            # identical between an uninterrupted and a resumed run.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _pretext(self, task: str) -> PretextData:
        """The task's pretext data as set up, or as configured before ``setup``."""
        return self.pretexts.get(task) or self.pretext_tasks[task].pretext

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size


def _collate_and_finish(pretext: PretextData, samples: list[Any]) -> Tensor:
    return pretext.finish(pretext.collate(samples))


def _split_holdout(size: int, holdout: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices of the policy's held-out set and of the remaining training samples."""
    if holdout >= size:
        raise ValueError(
            f"data.policy_holdout={holdout} leaves no training samples out of {size}; lower it"
        )
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[:holdout]), sorted(order[holdout:])


def _evenly_spaced(size: int, count: int | None) -> list[int]:
    if count is None or count >= size:
        return list(range(size))
    spaced: list[int] = np.linspace(0, size - 1, count).round().astype(int).tolist()
    return spaced


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value
