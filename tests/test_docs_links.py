"""README.md and docs/: every relative link resolves, and README stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 300

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
# [text](target) and ![alt](target); the target ends at whitespace (a "title") or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            lines.append(line)
    return lines


def links(text: str) -> list[str]:
    """Link and image targets, leaving out what inline code spans show."""
    prose = (INLINE_CODE.sub("", line) for line in prose_lines(text))
    return [m.group(1) for line in prose for m in LINK.finditer(line)]


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation out, spaces -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for line in prose_lines(text):
        match = HEADING.match(line)
        if match:
            base = anchor(match.group(1))
            name, n = base, 0
            while name in found:  # GitHub numbers repeated headings: x, x-1, x-2
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def anchors_of(page: Path) -> set[str]:
    return anchors(page.read_text(encoding="utf-8"))


def broken_links(page: Path) -> list[str]:
    """Each relative link of ``page`` whose file, or whose #anchor in a .md file, is missing."""
    broken = []
    text = page.read_text(encoding="utf-8")
    for target in links(text):
        if EXTERNAL.match(target):
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors_of(resolved):
            broken.append(f"{target}: no heading #{fragment} in {resolved.name}")
    return broken


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_readme_links_into_docs() -> None:
    targets = links((REPO / "README.md").read_text(encoding="utf-8"))
    assert any(t.startswith("docs/") for t in targets)


def test_readme_is_a_front_door() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES


def test_every_docs_page_says_what_it_is_for() -> None:
    """A hand-written page opens with its title and then a sentence, not a table or code."""
    for page in sorted((REPO / "docs").glob("*.md")):
        lines = [ln for ln in page.read_text(encoding="utf-8").splitlines() if ln.strip()]
        assert lines[0].startswith("# "), page.name
        assert lines[1][0].isalpha(), f"{page.name}: {lines[1]!r}"


def test_the_checker_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A title\n\n## Second `part`, here\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#second-part-here) ![img](missing.png)\n"
        "[bad anchor](there.md#nowhere) [web](https://example.org/x.md) [self](#top)\n"
        "`[in code](gone.md)`\n```\n[in a fence](gone.md)\n```\n# Top\n"
    )
    assert broken_links(page) == [
        f"missing.png: no file {tmp_path / 'missing.png'}",
        "there.md#nowhere: no heading #nowhere in there.md",
    ]
