"""OmegaConf resolvers the configs use; registered when ``ssl_rl`` is imported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

# What ``${run_dir:}`` shows before Hydra has made the run directory.
RUN_DIR_PLACEHOLDER = "<hydra.runtime.output_dir>"


def by_scale(values: Mapping[str, Any], *, _root_: DictConfig) -> Any:
    """``${by_scale:{demo: 100, paper: 1000}}``: the value for the run's ``scale_name``.

    Keeps a value's demo stand-in next to its paper value in the one file that defines it.
    A list or mapping comes back as a config node, so ``OmegaConf.resolve`` (``--cfg job
    --resolve``) can store it.
    """
    scale = _root_.get("scale_name")
    if scale is None:
        raise ValueError("by_scale needs a top-level scale_name (set by conf/scale/<name>.yaml)")
    if scale not in values:
        raise ValueError(f"by_scale has no value for scale_name={scale!r}; it has {list(values)}")
    value = values[scale]
    return OmegaConf.create(value) if isinstance(value, (list, dict)) else value


def run_dir() -> str:
    """``${run_dir:}``: the run directory Hydra made (``hydra.runtime.output_dir``).

    ``--cfg job`` prints the config before any directory exists (Hydra leaves the value
    missing); the paths built on it then read ``<hydra.runtime.output_dir>/...``, not
    ``None/...``.
    """
    runtime = HydraConfig.get().runtime
    if OmegaConf.is_missing(runtime, "output_dir") or runtime.output_dir is None:
        return RUN_DIR_PLACEHOLDER
    return str(runtime.output_dir)


def register() -> None:
    if not OmegaConf.has_resolver("by_scale"):
        OmegaConf.register_new_resolver("by_scale", by_scale)
    if not OmegaConf.has_resolver("run_dir"):
        OmegaConf.register_new_resolver("run_dir", run_dir)
