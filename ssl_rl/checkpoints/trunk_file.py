"""The shareable trunk: a ``.safetensors`` of the trunk's weights, its header saying what it is.

Tensors: the trunk's under its own ``state_dict`` keys (``conv1.conv.weight``, ...), so
``CaffeNetTrunk(...).load_state_dict(safetensors.torch.load_file(path))`` loads a trunk-only
file in plain PyTorch; optionally the heads (``heads.<task>.*``) and Ψ
(``permutations.<task>.perms``) under the pretraining module's keys. Header metadata (strings;
JSON where structured): ``format``, ``architecture`` (width, groups, conv1_stride, in_channels,
batch_norm), ``experiment``, ``tasks``, ``steps``, ``psi_sha256`` (per task, the SHA-256 of Ψ
as row-major int64 bytes) and ``ssl_rl_version``. Nothing in such a file can run code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

import ssl_rl
from ssl_rl.checkpoints.loading import CheckpointMismatchError

FORMAT = "ssl_rl.trunk/1"
TRUNK_PREFIX = "trunk."
HEAD_PREFIX = "heads."
PSI_PREFIX = "permutations."
_JSON_FIELDS = ("architecture", "tasks", "psi_sha256")


@dataclass(frozen=True)
class TrunkFile:
    """A read trunk file: its tensors under the pretraining module's keys (``trunk.*``,
    ``heads.*``, ``permutations.*``) and its parsed header."""

    path: Path
    state: dict[str, torch.Tensor]
    metadata: dict[str, Any]

    @property
    def trunk_config(self) -> dict[str, Any] | None:
        """The trunk's constructor arguments (as a checkpoint's ``trunk_config``)."""
        architecture = self.metadata.get("architecture")
        if not isinstance(architecture, dict):
            return None
        return {k: v for k, v in architecture.items() if k != "batch_norm"}

    @property
    def steps(self) -> int | None:
        steps = self.metadata.get("steps")
        return int(steps) if isinstance(steps, str) and steps.isdigit() else None


def psi_sha256(perms: torch.Tensor) -> str:
    """SHA-256 of Ψ as row-major int64 bytes: the same set hashes the same however stored."""
    return hashlib.sha256(perms.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


def trunk_file_metadata(checkpoint: dict[str, Any]) -> dict[str, str]:
    """The header of a trunk exported from a ``train.py`` checkpoint dict."""
    state: dict[str, torch.Tensor] = checkpoint["state_dict"]
    architecture = dict(checkpoint.get("trunk_config") or {})
    architecture["batch_norm"] = any(k.startswith(TRUNK_PREFIX) and ".bn." in k for k in state)
    schedule = (checkpoint.get("hyper_parameters") or {}).get("schedule") or {}
    psi = {
        k[len(PSI_PREFIX) : -len(".perms")]: psi_sha256(v)
        for k, v in state.items()
        if k.startswith(PSI_PREFIX) and k.endswith(".perms")
    }
    return {
        "format": FORMAT,
        "architecture": json.dumps(architecture),
        "experiment": str(checkpoint.get("experiment") or ""),
        "tasks": json.dumps(list(schedule.get("tasks") or [])),
        "steps": str(checkpoint.get("global_step", "")),
        "psi_sha256": json.dumps(psi),
        "ssl_rl_version": ssl_rl.__version__,
    }


def write_trunk_file(
    path: Path, checkpoint: dict[str, Any], heads: bool = False, psi: bool = False
) -> dict[str, str]:
    """Write the trunk of ``checkpoint`` (and its heads / Ψ if asked) to ``path``; return the
    header metadata."""
    state: dict[str, torch.Tensor] = checkpoint["state_dict"]
    tensors = {k[len(TRUNK_PREFIX) :]: v for k, v in state.items() if k.startswith(TRUNK_PREFIX)}
    if heads:
        tensors.update({k: v for k, v in state.items() if k.startswith(HEAD_PREFIX)})
    if psi:
        tensors.update({k: v for k, v in state.items() if k.startswith(PSI_PREFIX)})
    metadata = trunk_file_metadata(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, path, metadata)
    return metadata


def read_trunk_file(path: Path) -> TrunkFile:
    """Read a trunk file written by :func:`write_trunk_file`; a damaged one, or a safetensors
    file of something else, is a :class:`CheckpointMismatchError` naming it."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointMismatchError(
            f"{path}: a damaged or truncated safetensors file ({error})"
        ) from None
    if raw.get("format") != FORMAT:
        raise CheckpointMismatchError(
            f"{path}: a safetensors file, but not a trunk exported by ssl_rl (its header has "
            f"format={raw.get('format')!r}, expected {FORMAT!r}); export one with "
            "`python -m ssl_rl.checkpoints.export <run dir> --out trunk.safetensors`"
        )
    metadata: dict[str, Any] = dict(raw)
    for field in _JSON_FIELDS:
        try:
            metadata[field] = json.loads(raw.get(field, "null"))
        except ValueError:
            raise CheckpointMismatchError(
                f"{path}: header field {field!r} is not valid JSON: {raw.get(field)!r}"
            ) from None
    state = {
        k if k.startswith((HEAD_PREFIX, PSI_PREFIX)) else TRUNK_PREFIX + k: v
        for k, v in tensors.items()
    }
    return TrunkFile(path=path, state=state, metadata=metadata)
