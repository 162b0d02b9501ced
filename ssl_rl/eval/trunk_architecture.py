"""The transferred trunk's architecture (``width``, ``groups``) comes from the checkpoint."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ssl_rl.checkpoints.loading import CheckpointMismatchError

# The constructor arguments that fix the trunk's parameter shapes. conv1's stride is not one:
# a trunk pretrained at stride 2 on tiles transfers at stride 4 to 227 px inputs.
ARCHITECTURE_KEYS = ("width", "groups")


def command_line_keys(overrides: Iterable[str], prefix: str = "trunk.") -> set[str]:
    """The ``<key>`` names of the ``trunk.<key>`` Hydra overrides (``trunk.width=0.5``,
    ``+trunk.groups=2``)."""
    keys = set()
    for override in overrides:
        name = override.split("=", 1)[0].lstrip("+~")
        if name.startswith(prefix):
            keys.add(name[len(prefix) :])
    return keys


def same_value(a: Any, b: Any) -> bool:
    """Equal, numbers up to float rounding (a width of 0.125 read back from JSON or YAML)."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b))
    return bool(a == b)


def checkpoint_architecture(
    configured: Mapping[str, Any],
    saved: Mapping[str, Any] | None,
    explicit: set[str],
    path: Path,
) -> dict[str, Any]:
    """The ``width`` / ``groups`` the trunk must be built with to load the checkpoint at ``path``.

    ``saved`` is the checkpoint's ``trunk_config`` (None: an older checkpoint without one; then
    the configured values stay and loading checks the shapes). A value given on the command line
    (``explicit``) that disagrees with the checkpoint is refused, naming both values.
    """
    if saved is None:
        return {key: configured[key] for key in ARCHITECTURE_KEYS}
    conflicts = [
        f"trunk.{key}={configured[key]} on the command line, but the checkpoint's trunk has "
        f"{key}={saved[key]}"
        for key in ARCHITECTURE_KEYS
        if key in explicit and key in saved and not same_value(configured[key], saved[key])
    ]
    if conflicts:
        raise CheckpointMismatchError(
            f"{path}: "
            + "; ".join(conflicts)
            + ". The architecture is read from the checkpoint: drop the override or pass the "
            "checkpoint's value."
        )
    return {key: saved.get(key, configured[key]) for key in ARCHITECTURE_KEYS}
