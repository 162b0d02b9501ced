"""OmegaConf resolvers the configs use; registered when ``ssl_rl`` is imported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf


def by_scale(values: Mapping[str, Any], *, _root_: DictConfig) -> Any:
    """``${by_scale:{demo: 100, paper: 1000}}``: the value for the run's ``scale_name``.

    Keeps a value's demo stand-in next to its paper value in the one file that defines it.
    """
    scale = _root_.get("scale_name")
    if scale is None:
        raise ValueError("by_scale needs a top-level scale_name (set by conf/scale/<name>.yaml)")
    if scale not in values:
        raise ValueError(f"by_scale has no value for scale_name={scale!r}; it has {list(values)}")
    return values[scale]


def register() -> None:
    if not OmegaConf.has_resolver("by_scale"):
        OmegaConf.register_new_resolver("by_scale", by_scale)
