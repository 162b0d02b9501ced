"""A checkpoint to resume must be of the run that is asked for: same tasks, same shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ssl_rl.run.errors import ConfigRefused


class ExperimentStamp(pl.Callback):
    """Writes the experiment's name into each checkpoint, for the refusal below."""

    def __init__(self, experiment: str) -> None:
        self.experiment = experiment

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["experiment"] = self.experiment


def check_checkpoint_matches(
    checkpoint: dict[str, Any], path: str, model: nn.Module, experiment: str
) -> None:
    """Raise :class:`ConfigRefused` naming what the checkpoint is and what was asked, when its
    weights do not fit ``model`` (PyTorch would only list missing and unexpected keys)."""
    saved = checkpoint.get("state_dict", {})
    wanted = model.state_dict()
    missing = sorted(set(wanted) - set(saved))
    unexpected = sorted(set(saved) - set(wanted))
    reshaped = [
        f"{k} {tuple(saved[k].shape)} vs {tuple(wanted[k].shape)}"
        for k in sorted(set(saved) & set(wanted))
        if tuple(saved[k].shape) != tuple(wanted[k].shape)
    ]
    if not (missing or unexpected or reshaped):
        return
    saved_tasks = _tasks(checkpoint.get("hyper_parameters", {}))
    wanted_tasks = list(getattr(getattr(model, "schedule", None), "tasks", []))
    details = [
        *(f"  this run has {k}, the checkpoint not" for k in _heads(missing)),
        *(f"  the checkpoint has {k}, this run not" for k in _heads(unexpected)),
        *(f"  shape {r}" for r in reshaped[:5]),
    ]
    raise ConfigRefused(
        f"checkpoint {path} is from experiment "
        f"{checkpoint.get('experiment') or _experiment_of(path)!r} (tasks: "
        f"{', '.join(saved_tasks) or '?'}), but this run is experiment {experiment!r} (tasks: "
        f"{', '.join(wanted_tasks)}); its weights do not fit:\n"
        + "\n".join(details)
        + "\nResume it with its own experiment (`resume=<run dir>` replays its settings), or "
        "start a new run from its weights with `init_from=`."
    )


def _tasks(hparams: Any) -> list[str]:
    schedule = hparams.get("schedule", {}) if hasattr(hparams, "get") else {}
    return list(schedule.get("tasks", [])) if hasattr(schedule, "get") else []


def _heads(keys: list[str]) -> list[str]:
    """Keys grouped by module (``heads.temporal``, ``trunk.conv1``), in order."""
    groups: list[str] = []
    for key in keys:
        group = ".".join(key.split(".")[:2])
        if group not in groups:
            groups.append(group)
    return groups[:8]


def _experiment_of(path: str) -> str:
    """The experiment name in the run's saved config, when the checkpoint is in a run dir."""
    config = Path(path).resolve().parent.parent / ".hydra" / "config.yaml"
    if not config.is_file():
        return "?"
    saved = OmegaConf.load(config)
    return str(saved.get("name", "?")) if isinstance(saved, DictConfig) else "?"
