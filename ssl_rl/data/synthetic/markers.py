"""Completion markers of the generated image datasets (ImageNet and VOC stand-ins).

A generator writes an in-progress marker first and a completion marker holding its parameters
last. A folder is reused only when its completion marker holds the wanted parameters, and
emptied only when one of the two markers says the generator wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ssl_rl.data.errors import DatasetError


def read_marker(marker: Path) -> dict[str, Any] | None:
    """The parameters a completion marker holds; None when it is missing or unreadable."""
    if not marker.is_file():
        return None
    try:
        content: dict[str, Any] = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return content


def holds_earlier_dataset(
    root: Path, complete_marker: str, in_progress_marker: str, generator: str, root_name: str
) -> bool:
    """Whether ``root`` holds an earlier dataset of this generator (to be emptied); creates a
    missing ``root`` and refuses a non-empty one the generator did not write."""
    if not root.exists():
        root.mkdir(parents=True)
        return False
    ours = (root / complete_marker).exists() or (root / in_progress_marker).exists()
    if not ours and any(root.iterdir()):
        raise DatasetError(
            f"{root} is not empty and was not written by the synthetic {generator} generator; "
            f"point the synthetic {root_name} root at an empty or new folder."
        )
    return ours
