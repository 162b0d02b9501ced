"""Missing data: name the dataset root setting first, not only the derived key that failed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssl_rl.data.errors import DatasetError

# conf/paths/default.yaml: each root and the environment variable that sets it.
ROOT_VARIABLES = {
    "imagenet": "IMAGENET_ROOT",
    "ucf101": "UCF101_ROOT",
    "hmdb51": "HMDB51_ROOT",
    "voc07": "VOC07_ROOT",
    "voc12": "VOC12_ROOT",
}


def with_data_roots(error: DatasetError, paths: Mapping[str, Any]) -> DatasetError:
    """``error`` led by the ``paths.<root>`` setting (and its environment variable) under which
    the missing file lies; ``error`` itself when it lies under none."""
    text = str(error)
    for name, variable in ROOT_VARIABLES.items():
        root = str(paths.get(name, "") or "").rstrip("/")
        if root and (f"{root}/" in text or f"{root} " in text or text.endswith(root)):
            return DatasetError(
                f"{name} data not found under paths.{name}={root}. Set `paths.{name}=<dir>` "
                f"(on the command line or in conf/paths/default.yaml) or the environment "
                f"variable {variable} to the dataset's root.\n  Details: {text}"
            )
    return error
