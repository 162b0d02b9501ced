"""Load the shared trunk of a ``train.py`` checkpoint or exported trunk into a model, strictly."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ssl_rl.checkpoints.loading import CheckpointMismatchError, is_safetensors, load_checkpoint
from ssl_rl.checkpoints.trunk_file import read_trunk_file
from ssl_rl.nets.caffenet import CaffeNetTrunk
from ssl_rl.run.errors import CheckpointNotFound

log = logging.getLogger(__name__)

TRUNK_PREFIX = "trunk."


@dataclass(frozen=True)
class TrunkLoadReport:
    """What was loaded: the file, the trunk tensors copied, and the keys left behind."""

    path: Path
    loaded_keys: int
    ignored_keys: int  # heads, permutation sets: not part of the transferred trunk
    trained_steps: int | None
    trunk_config: dict[str, Any] | None


def trunk_config(trunk: CaffeNetTrunk) -> dict[str, Any]:
    """The constructor arguments that fix the trunk's parameter shapes (saved in checkpoints)."""
    return {
        "width": trunk.width,
        "in_channels": trunk.in_channels,
        "groups": trunk.groups,
        "conv1_stride": trunk.conv1_stride,
    }


def resolve_pretrained_path(value: str | Path, key: str = "ckpt") -> Path:
    """A checkpoint or exported ``.safetensors`` trunk, or a ``train.py`` run directory (its
    ``checkpoints/last.ckpt``); ``key`` is the config key named in the error."""
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        hint = ", or ckpt=null for the random-init baseline" if key == "ckpt" else ""
        raise CheckpointNotFound(
            f"{key}={value!r}: no checkpoint at {path}. Pass a .ckpt written by train.py, its "
            f"run directory (outputs/<experiment>/<time>/) or an exported .safetensors{hint}."
        )
    return path


def read_checkpoint(
    path: Path, context: str = "", trust: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint dict written by ``train.py`` and its ``state_dict``, read weights-only
    (``trust``: the full unpickler, for one's own older files). An exported ``.safetensors``
    trunk reads as a checkpoint of its tensors (``trunk.*``, ``heads.*``, ``permutations.*``)
    with ``trunk_config``, ``global_step``, ``experiment`` and ``format`` from its header. A
    file that is neither is a :class:`CheckpointMismatchError` naming it (``context`` prefixes
    the message)."""
    if is_safetensors(path):
        exported = read_trunk_file(path)
        checkpoint = {
            "state_dict": exported.state,
            "trunk_config": exported.trunk_config,
            "global_step": exported.steps,
            "experiment": exported.metadata.get("experiment"),
            "format": "safetensors",
        }
        return checkpoint, exported.state
    checkpoint = load_checkpoint(path, trust=trust, context=context)
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointMismatchError(
            f"{context}{path}: no 'state_dict' entry; expected a Lightning checkpoint written "
            "by train.py"
        )
    return checkpoint, state


def key_mismatches(
    expected: dict[str, torch.Tensor], saved: dict[str, Any], unexpected: bool
) -> list[str]:
    """Message lines for the keys ``saved`` lacks, mis-shapes and (if ``unexpected``) adds."""
    groups = {
        "missing keys": sorted(set(expected) - set(saved)),
        "unexpected keys": sorted(set(saved) - set(expected)) if unexpected else [],
        "shape mismatches": sorted(
            f"{k}: checkpoint {tuple(saved[k].shape)} vs model {tuple(expected[k].shape)}"
            for k in set(expected) & set(saved)
            if saved[k].shape != expected[k].shape
        ),
    }
    lines = []
    for title, keys in groups.items():
        if keys:
            more = f", ... ({len(keys)} in all)" if len(keys) > 8 else ""
            lines.append(f"  {title}: {', '.join(keys[:8])}{more}")
    return lines


def saved_trunk_config(path: Path, trust: bool = False) -> dict[str, Any] | None:
    """The ``trunk_config`` a checkpoint (or an exported trunk's header) records (None if it
    has none)."""
    checkpoint, _ = read_checkpoint(path, trust=trust)
    saved = checkpoint.get("trunk_config")
    return dict(saved) if isinstance(saved, dict) else None


def load_pretrained_trunk(
    trunk: CaffeNetTrunk, ckpt: str | Path, trust: bool = False
) -> TrunkLoadReport:
    """Copy the ``trunk.*`` tensors of a pretraining checkpoint into ``trunk``, strictly.

    Every trunk parameter and buffer must be in the checkpoint with the same shape, and the
    checkpoint must hold no trunk tensor the model lacks; otherwise a
    :class:`CheckpointMismatchError` lists the missing / unexpected / mis-shaped keys and, when
    the checkpoint records it, the architecture it was trained with. conv1's stride is not a
    shape: a trunk pretrained at stride 2 on tiles transfers to stride 4 at 227 px.
    """
    path = resolve_pretrained_path(ckpt)
    checkpoint, state = read_checkpoint(path, trust=trust)
    trunk_state = {
        k[len(TRUNK_PREFIX) :]: v for k, v in state.items() if k.startswith(TRUNK_PREFIX)
    }
    saved_config = checkpoint.get("trunk_config")
    if not trunk_state:
        raise CheckpointMismatchError(
            f"{path}: holds no '{TRUNK_PREFIX}*' tensors; it is not an ssl_rl pretraining "
            "checkpoint (keys start with "
            + ", ".join(sorted({k.split(".")[0] for k in state}))[:200]
            + ")"
        )
    expected = trunk.state_dict()
    problems = key_mismatches(expected, trunk_state, unexpected=True)
    if problems:
        lines = [f"{path}: the checkpoint's trunk does not match the configured trunk."]
        if saved_config is not None:
            lines.append(f"  checkpoint trunk: {saved_config}; configured: {trunk_config(trunk)}")
            lines.append("  set trunk.width / trunk.groups to the checkpoint's values")
        else:
            lines.append(f"  configured trunk: {trunk_config(trunk)} (check trunk.width/groups)")
        raise CheckpointMismatchError("\n".join(lines + problems))
    trunk.load_state_dict(trunk_state, strict=True)
    report = TrunkLoadReport(
        path=path,
        loaded_keys=len(trunk_state),
        ignored_keys=len(state) - len(trunk_state),
        trained_steps=checkpoint.get("global_step"),
        trunk_config=saved_config,
    )
    log.info(
        "loaded %d trunk tensors from %s (step %s); %d non-trunk tensors (heads, Ψ) ignored",
        report.loaded_keys,
        path,
        report.trained_steps,
        report.ignored_keys,
    )
    return report


def transfer_trunk(trunk: CaffeNetTrunk, conv1_stride: int) -> CaffeNetTrunk:
    """A copy of ``trunk`` with another conv1 stride (e.g. 4 for 227 px transfer inputs)."""
    config = {**trunk_config(trunk), "conv1_stride": conv1_stride}
    copy = CaffeNetTrunk(**config)
    copy.load_state_dict(trunk.state_dict())
    return copy.to(next(trunk.parameters()).device)
