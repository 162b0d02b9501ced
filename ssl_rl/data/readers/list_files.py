"""Reading the plain-text split and label lists of the dataset releases."""

from __future__ import annotations

from pathlib import Path


def read_list_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of the non-blank lines; any line ending, BOM ok."""
    text = Path(path).read_text(encoding="utf-8-sig")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
