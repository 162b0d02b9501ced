"""``torch.compile`` of the networks in place, so state_dict keys stay the plain ones."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_in_place(modules: Iterable[nn.Module], mode: str) -> None:
    """Compile each module's forward with ``mode`` (lazily, at its first call).

    ``nn.Module.compile`` wraps the call, not the module: parameters, buffers and checkpoint
    keys are those of the eager module (no ``_orig_mod.`` prefix), so checkpoints and exported
    weights load across settings. Shapes are static (``dynamic=False``): training, validation and
    the policy's X_val each get their own graph rather than slower shape-generic kernels.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"model.compile_mode must be null or one of {COMPILE_MODES}, got {mode!r}")
    for module in modules:
        module.compile(mode=mode, dynamic=False)
