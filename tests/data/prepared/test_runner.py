"""The shared preparation runner and the manifest's command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssl_rl.data.prepared.manifest import Manifest, canonical_command, read_manifest
from ssl_rl.data.prepared.runner import Job, UnreadableSourceError, run_preparation


def _copy_or_fail(source: Path, out: Path) -> int:
    text = source.read_text()
    if text == "unreadable":
        raise UnreadableSourceError("cannot read it")
    if text == "bug":
        raise RuntimeError("a bug, not a bad source")
    out.write_text(text.upper())
    return 1


def _setup(tmp_path: Path, contents: list[str]) -> tuple[list[Job], Manifest]:
    src = tmp_path / "src"
    src.mkdir()
    jobs = []
    for k, text in enumerate(contents):
        (src / f"{k}.txt").write_text(text)
        jobs.append(Job(src / f"{k}.txt", tmp_path / "dst" / "sub" / f"{k}.txt"))
    manifest = Manifest(kind="images", version=1, source=str(src), settings={"short_side": 8})
    return jobs, manifest


def test_unreadable_sources_are_skips_and_outputs_are_counted(tmp_path: Path) -> None:
    jobs, manifest = _setup(tmp_path, ["a", "unreadable", "ccc"])
    stats = run_preparation(jobs, _copy_or_fail, tmp_path / "dst", manifest, 2, progress=False)
    assert (stats.written, stats.files, stats.bytes) == (2, 2, 4)
    assert stats.skipped == [(jobs[1].source, "cannot read it")]
    written = read_manifest(tmp_path / "dst")
    assert written is not None and written.complete and written.bytes == 4
    assert written.skipped == [{"file": str(jobs[1].source), "reason": "cannot read it"}]


def test_any_other_error_stops_the_run_and_leaves_it_incomplete(tmp_path: Path) -> None:
    jobs, manifest = _setup(tmp_path, ["a", "bug"])
    with pytest.raises(RuntimeError, match="a bug"):
        run_preparation(jobs, _copy_or_fail, tmp_path / "dst", manifest, 1, progress=False)
    assert not read_manifest(tmp_path / "dst").complete  # type: ignore[union-attr]
    assert sorted(p.name for p in (tmp_path / "dst" / "sub").iterdir()) == ["0.txt"]


def test_workers_must_be_positive(tmp_path: Path) -> None:
    jobs, manifest = _setup(tmp_path, ["a"])
    with pytest.raises(ValueError, match="--workers"):
        run_preparation(jobs, _copy_or_fail, tmp_path / "dst", manifest, 0, progress=False)


def test_canonical_command_quotes_paths_and_spells_flags() -> None:
    command = canonical_command(
        "video_uint8", "/data/my frames", {"short_side": 73, "stride": 2, "flat": False}, "/v"
    )
    assert command == (
        "python -m ssl_rl.data.prepare_frames --src /v --dst '/data/my frames' --format uint8 "
        "--short-side 73 --stride 2"
    )
    assert canonical_command("images", "/m", {"flat": True}).endswith("--dst /m --flat")
    assert "--src <source folder>" in canonical_command("images", "/m", {})
