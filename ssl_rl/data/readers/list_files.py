"""Reading the plain-text split and label lists of the dataset releases."""

from __future__ import annotations

from pathlib import Path

from ssl_rl.data.errors import DatasetError


def read_list_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of the non-blank lines; any line ending, BOM ok."""
    text = Path(path).read_text(encoding="utf-8-sig")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_image_ids(path: Path, missing_hint: str) -> list[str]:
    """The image ids of a VOC-style split list (one per line, each once, at least one).

    ``missing_hint`` ends the error when the list itself is missing (which key to check)."""
    if not path.is_file():
        raise DatasetError(f"{path} is missing: {missing_hint}")
    ids: list[str] = []
    seen: set[str] = set()
    for line_number, line in read_list_lines(path):
        fields = line.split()
        if len(fields) != 1:
            raise DatasetError(f"{path}:{line_number}: expected one image id, got {line!r}")
        if fields[0] in seen:
            raise DatasetError(f"{path}:{line_number}: image id {fields[0]} listed twice")
        seen.add(fields[0])
        ids.append(fields[0])
    if not ids:
        raise DatasetError(f"{path} lists no image ids")
    return ids
