"""Policy modes: ``rl`` (the paper's π), ``credit`` (per-group credit), ``errprop`` and
``monitor`` (non-learned controls)."""

from __future__ import annotations

from ssl_rl.policy.communicator import Communicator
from ssl_rl.policy.modes.base import GroupedPolicy, ModeSettings, PolicyMode, PolicyStep
from ssl_rl.policy.modes.credit import CreditMode
from ssl_rl.policy.modes.fixed import ErrorProportionalMode, UniformMode
from ssl_rl.policy.modes.rl import RLMode
from ssl_rl.policy.seeds import TaskSeeds

MODES: dict[str, type[PolicyMode]] = {
    mode.name: mode for mode in (RLMode, CreditMode, ErrorProportionalMode, UniformMode)
}


def check_mode(name: str) -> None:
    """Fail early on a ``policy.mode`` that names no mode."""
    if name not in MODES:
        raise ValueError(f"policy.mode must be one of {tuple(MODES)}, got {name!r}")


def make_mode(
    name: str,
    settings: ModeSettings,
    num_perms: int,
    seeds: TaskSeeds,
    comm: Communicator | None = None,
) -> PolicyMode:
    """The mode ``name`` for a task with ``num_perms`` permutations."""
    check_mode(name)
    return MODES[name](settings, num_perms, seeds, comm)


__all__ = [
    "MODES",
    "CreditMode",
    "ErrorProportionalMode",
    "GroupedPolicy",
    "ModeSettings",
    "PolicyMode",
    "PolicyStep",
    "RLMode",
    "UniformMode",
    "check_mode",
    "make_mode",
]
