"""``init_from=<run>``: start a new run from another run's weights, nothing else.

Unlike ``ckpt_path`` (resume: optimiser, schedule, step, policy and RNG all restored), this
copies only the module's tensors (trunk, the scheduled tasks' heads, BN statistics, Ψ): the
optimiser, learning-rate schedule, step count and permutation policy start fresh. The paper's
Fig. 4 analysis starts this way: "the CNN model from an intermediate checkpoint", a new policy.
An exported trunk (``.safetensors``) gives the trunk, and the heads and Ψ it holds; the others
start fresh.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from ssl_rl.checkpoints.loading import CheckpointMismatchError
from ssl_rl.eval.pretrained import (
    key_mismatches,
    read_checkpoint,
    resolve_pretrained_path,
    trunk_config,
)
from ssl_rl.eval.trunk_architecture import ARCHITECTURE_KEYS, same_value
from ssl_rl.nets.caffenet import CaffeNetTrunk

log = logging.getLogger(__name__)


def load_initial_weights(model: nn.Module, value: str | Path, trust: bool = False) -> Path:
    """Copy every tensor of ``model`` from the checkpoint ``value`` (file or run directory).

    Every model key must be in the checkpoint with the same shape (a different architecture
    or Ψ is refused, with the keys listed); checkpoint tensors the model lacks (e.g. the head
    of a task this run does not train) are ignored and logged. From an exported trunk, the
    model's heads and Ψ the file does not hold keep their fresh values.
    """
    path = resolve_pretrained_path(value, key="init_from")
    checkpoint, saved = read_checkpoint(path, context="init_from: ", trust=trust)
    expected = model.state_dict()
    fresh: list[str] = []
    if checkpoint.get("format") == "safetensors":
        _check_architecture(model, checkpoint.get("trunk_config"), path)
        held = {_module_of(k) for k in saved}
        fresh = sorted({_module_of(k) for k in expected} - held - {"trunk"})
        expected = {k: v for k, v in expected.items() if _module_of(k) in held | {"trunk"}}
    problems = key_mismatches(expected, saved, unexpected=False)
    if problems:
        header = f"init_from: {path} does not fit this run's model (same model.* config needed)"
        raise CheckpointMismatchError("\n".join([header, *problems]))
    model.load_state_dict({k: saved[k] for k in expected}, strict=not fresh)
    ignored = sorted(set(saved) - set(expected))
    log.info(
        "init_from: %d tensors from %s (trained %s steps); %d ignored%s%s",
        len(expected),
        path,
        checkpoint.get("global_step"),
        len(ignored),
        f" ({', '.join(sorted({k.split('.')[1] for k in ignored if '.' in k}))})"
        if ignored
        else "",
        f"; not in the file, fresh: {', '.join(fresh)}" if fresh else "",
    )
    return path


def _module_of(key: str) -> str:
    """``trunk`` for trunk tensors, ``heads.<task>`` / ``permutations.<task>`` otherwise."""
    parts = key.split(".")
    return "trunk" if parts[0] == "trunk" else ".".join(parts[:2])


def _check_architecture(model: nn.Module, saved: object, path: Path) -> None:
    """An exported trunk's header names its architecture: refuse another one, naming both."""
    trunk = getattr(model, "trunk", None)
    if not isinstance(trunk, CaffeNetTrunk) or not isinstance(saved, dict):
        return
    configured = trunk_config(trunk)
    conflicts = [
        f"{key}={saved[key]} in the file, model.trunk.{key}={configured[key]} in this run"
        for key in ARCHITECTURE_KEYS
        if key in saved and not same_value(saved[key], configured[key])
    ]
    if conflicts:
        raise CheckpointMismatchError(
            f"init_from: {path}: the exported trunk is of another architecture: "
            + "; ".join(conflicts)
            + ". Set model.trunk.width / model.trunk.groups to the file's values."
        )
