"""``init_from=<run>``: start a new run from another run's weights, nothing else.

Unlike ``ckpt_path`` (resume: optimiser, schedule, step, policy and RNG all restored), this
copies only the module's tensors (trunk, the scheduled tasks' heads, BN statistics, Ψ): the
optimiser, learning-rate schedule, step count and permutation policy start fresh. The paper's
Fig. 4 analysis starts this way: "the CNN model from an intermediate checkpoint", a new policy.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from ssl_rl.eval.pretrained import (
    CheckpointMismatchError,
    key_mismatches,
    read_checkpoint,
    resolve_pretrained_path,
)

log = logging.getLogger(__name__)


def load_initial_weights(model: nn.Module, value: str | Path) -> Path:
    """Copy every tensor of ``model`` from the checkpoint ``value`` (file or run directory).

    Every model key must be in the checkpoint with the same shape (a different architecture
    or Ψ is refused, with the keys listed); checkpoint tensors the model lacks (e.g. the head
    of a task this run does not train) are ignored and logged.
    """
    path = resolve_pretrained_path(value, key="init_from")
    checkpoint, saved = read_checkpoint(path, context="init_from: ")
    expected = model.state_dict()
    problems = key_mismatches(expected, saved, unexpected=False)
    if problems:
        header = f"init_from: {path} does not fit this run's model (same model.* config needed)"
        raise CheckpointMismatchError("\n".join([header, *problems]))
    model.load_state_dict({k: saved[k] for k in expected}, strict=True)
    ignored = sorted(set(saved) - set(expected))
    log.info(
        "init_from: %d tensors from %s (trained %s steps); %d ignored%s",
        len(expected),
        path,
        checkpoint.get("global_step"),
        len(ignored),
        f" ({', '.join(sorted({k.split('.')[1] for k in ignored if '.' in k}))})"
        if ignored
        else "",
    )
    return path
