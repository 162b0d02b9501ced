"""Checkpoint files that are whole or absent: written aside and renamed, refused when cut short."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO

from ssl_rl.run.errors import ConfigRefused

PARTIAL_SUFFIX = ".partial"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes ``<name>.partial`` next to the target, syncs it, then renames it into place.

    A crash or a full disk while writing leaves the previous ``last.ckpt`` as it was (and at
    most a ``.partial`` file, replaced by the next save). Lightning's own save stages the file
    in the system temp directory and *moves* it, which is a copy, not a rename, whenever that
    directory is on another file system than the run, and it holds a second copy in memory.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        try:
            with open(partial, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _sync_directory(target.parent)


def save_last(trainer: pl.Trainer) -> str:
    """Write ``last.ckpt`` where :class:`~pytorch_lightning.callbacks.ModelCheckpoint` keeps it."""
    callback = trainer.checkpoint_callback
    directory = getattr(callback, "dirpath", None) or Path(trainer.default_root_dir) / "checkpoints"
    path = Path(directory) / "last.ckpt"
    trainer.save_checkpoint(path, weights_only=False)  # resumable
    if callback is not None:
        callback.last_model_path = str(path)  # type: ignore[attr-defined]
    return str(path)


def check_complete(path: str | Path, key: str = "ckpt_path") -> None:
    """Refuse a checkpoint that is not a whole ``torch.save`` archive (cut short while written).

    A truncated file has lost the zip directory at its end; the check reads only that.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        earlier = sorted(p for p in Path(path).parent.glob("*.ckpt") if p.name != Path(path).name)
        hint = (
            f"the newest other checkpoint there is {earlier[-1]} (ckpt_path={earlier[-1]} "
            "continues from it in a new run directory)"
            if earlier
            else "no other checkpoint is there; start the run again"
        )
        raise ConfigRefused(
            f"{key}: {path} is not a complete checkpoint ({error}): it was cut short while "
            f"being written (a crash or a full disk); {hint}"
        ) from error


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX: the directory entry lives in the directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
