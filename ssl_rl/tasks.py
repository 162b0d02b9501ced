"""A pretext task as one unit: its classes, data source, head, loss weight and policy settings.

Each task is one YAML under ``conf/task/`` (``_target_: ssl_rl.tasks.PretextTask``); an
experiment lists the ones it trains in its defaults and the schedule orders them by name.
Nothing in Python lists the task names: the module, the datamodule, the policy and the report
take whatever tasks the run composed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import hydra
from omegaconf import DictConfig
from torch import Generator, Tensor, nn
from torch.utils.data import Dataset


class ClassSet(Protocol):
    """What the classifier predicts: class index → a transformation of the parts on the device."""

    @property
    def num_classes(self) -> int: ...

    def transform(self, parts: Tensor, idx: Tensor, generator: Generator | None = None) -> Tensor:
        """``parts`` (B, n, C, h, w) transformed by class ``idx`` (B,)."""
        ...


class SampleReader(Protocol):
    """A dataset release on disk: its training and validation sample paths."""

    def samples(self, config_key: str) -> tuple[list[Path], list[Path]]: ...


class PretextData(Protocol):
    """Turns samples into unpermuted parts (B, n, C, h, w) for the task's classes to transform,
    in two stages: the dataset's items come from loader workers (uint8 crops and random
    draws), ``finish`` turns a collated batch of them into float parts on its device."""

    val_views: int

    def dataset(
        self, samples: Sequence[Path], train: bool, seed: int, views: int = 1
    ) -> Dataset[dict[str, Tensor]]:
        """``train=False``: fixed, deterministic preprocessing; ``views`` fixed views per sample."""
        ...

    def finish(self, batch: dict[str, Tensor]) -> Tensor:
        """Float parts (B, n, C, h, w) of a collated batch of the dataset's items."""
        ...

    @property
    def host_keys(self) -> tuple[str, ...]:
        """Batch entries that ``finish`` reads on the host (not moved to the device)."""
        ...

    def collate(self, samples: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
        """A batch (a few tensors) of the dataset's items."""
        ...

    def placed(self, stage_on_device: bool) -> PretextData:
        """This pretext for a second stage on the device (True) or in the loader workers."""
        ...


@dataclass
class PretextTask:
    """One self-supervised classification task on a shared trunk."""

    name: str
    num_parts: int
    part_size: int
    classes: Any  # a ClassSet and an nn.Module (its buffers go into checkpoints)
    reader: SampleReader
    pretext: PretextData
    head: Callable[..., nn.Module]  # (in_dim=, num_parts=, num_classes=) -> head
    loss_weight: float = 1.0
    lr_scale: float = 1.0
    # Per-task changes to the policy's settings (e.g. num_groups for a task with few classes).
    policy: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.classes.num_classes)

    def build_head(self, in_dim: int) -> nn.Module:
        return self.head(in_dim=in_dim, num_parts=self.num_parts, num_classes=self.num_classes)


def build_tasks(
    tasks: DictConfig | Mapping[str, Any], names: Sequence[str]
) -> dict[str, PretextTask]:
    """The scheduled tasks, in schedule order, from the run's ``tasks`` config."""
    missing = [name for name in names if name not in tasks]
    if missing:
        raise ValueError(
            f"the schedule names task(s) {missing} but the config defines only {list(tasks)}; "
            "add `- /task@tasks.<name>: <name>` (conf/task/<name>.yaml) to the experiment"
        )
    built = {}
    for name in names:
        task = hydra.utils.instantiate(tasks[name], name=name, _convert_="all")
        if not isinstance(task, PretextTask):
            raise TypeError(f"tasks.{name} must instantiate ssl_rl.tasks.PretextTask")
        built[name] = task
    return built
