"""Sharing generated files between demo datasets without copying them."""

from __future__ import annotations

import shutil
from pathlib import Path


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source``, or a copy where the file system has none."""
    target.unlink(missing_ok=True)
    try:
        target.hardlink_to(source)
    except OSError:
        shutil.copyfile(source, target)
