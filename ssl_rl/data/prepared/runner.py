"""Runs one preparation: each source file becomes one output (a file or a folder).

Resumable and atomic: an output is made under ``<name>.partial`` in its own folder and renamed
into place with ``os.replace`` when complete, so an existing output is finished and is skipped
on a re-run, and a leftover ``.partial`` (an interrupted run) is removed and redone. A source
the work function cannot read raises :class:`UnreadableSourceError`: a counted skip listed in
the manifest, not the end of the run. Any other error stops the run with the manifest left
incomplete.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import multiprocessing
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepared.manifest import Manifest, read_manifest, write_manifest

logger = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"

# (source, temporary output path) → units written (frames of a video, 1 for an image).
Work = Callable[[Path, Path], int]


class UnreadableSourceError(Exception):
    """The source file cannot be decoded; the message says why."""


@dataclass(frozen=True)
class Job:
    """One source file and the output it becomes."""

    source: Path
    destination: Path


@dataclass
class RunStats:
    """What one run did, and what the output folder holds afterwards."""

    total: int = 0
    written: int = 0
    already_done: int = 0
    units: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    files: int = 0
    bytes: int = 0

    def summary(self, noun: str = "files", unit: str = "frames") -> str:
        return (
            f"{self.total} {noun}: {self.written} written ({self.units} {unit}), "
            f"{self.already_done} already done, {len(self.skipped)} skipped as unreadable; "
            f"the folder holds {self.files} outputs, {self.bytes / 2**20:.1f} MiB"
        )


def partial_path(destination: Path) -> Path:
    return destination.with_name(destination.name + PARTIAL_SUFFIX)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _run_one(work: Work, job: Job) -> tuple[Path, int, str | None]:
    partial = partial_path(job.destination)
    _remove(partial)  # left by an interrupted run
    try:
        units = work(job.source, partial)
        os.replace(partial, job.destination)
    except UnreadableSourceError as error:
        _remove(partial)
        return job.source, 0, str(error)
    except BaseException:
        _remove(partial)
        raise
    return job.source, units, None


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core already


def _names_by_parent(paths: Iterable[Path]) -> dict[Path, list[str]]:
    grouped: dict[Path, list[str]] = defaultdict(list)
    for path in paths:
        grouped[path.parent].append(path.name)
    return grouped


def _existing(destinations: Sequence[Path]) -> dict[Path, os.DirEntry[str]]:
    """The destinations that exist, one directory listing per folder (not one stat per file)."""
    found: dict[Path, os.DirEntry[str]] = {}
    for parent, names in _names_by_parent(destinations).items():
        try:
            entries = {entry.name: entry for entry in os.scandir(parent)}
        except FileNotFoundError:
            continue
        for name in names:
            if name in entries:
                found[parent / name] = entries[name]
    return found


def _remove_leftovers(folders: Iterable[Path]) -> None:
    """Deletes the ``.partial`` outputs an interrupted run left behind."""
    for folder in folders:
        try:
            leftovers = [e.path for e in os.scandir(folder) if e.name.endswith(PARTIAL_SUFFIX)]
        except FileNotFoundError:
            continue
        for path in leftovers:
            logger.info("removing %s, left by an interrupted run", path)
            _remove(Path(path))


def _size(entry: os.DirEntry[str]) -> int:
    if entry.is_dir(follow_symlinks=False):
        return sum(e.stat().st_size for e in os.scandir(entry.path) if e.is_file())
    return entry.stat().st_size


def _refuse_other_preparation(dst: Path, manifest: Manifest) -> None:
    prior = read_manifest(dst)
    if prior is None:
        return
    mine = (manifest.kind, manifest.version, manifest.source, manifest.settings)
    theirs = (prior.kind, prior.version, prior.source, prior.settings)
    if mine != theirs:
        raise DatasetError(
            f"{dst} already holds another preparation (kind {prior.kind}, version "
            f"{prior.version}, source {prior.source}, settings {prior.settings}), not the "
            f"requested one (kind {manifest.kind}, version {manifest.version}, source "
            f"{manifest.source}, settings {manifest.settings}); choose another --dst or delete "
            f"{dst} first"
        )


def run_preparation(
    jobs: Sequence[Job],
    work: Work,
    dst: Path,
    manifest: Manifest,
    workers: int = 1,
    progress: bool = True,
    desc: str = "preparing",
    unit: str = "file",
) -> RunStats:
    """Makes every job's output not made yet, over ``workers`` processes; writes the manifest.

    ``work`` must be picklable (a module-level function or a partial of one) when
    ``workers > 1``. ``manifest`` gives kind, version, source, settings and command; its counts
    are filled in here.
    """
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    dst.mkdir(parents=True, exist_ok=True)
    _refuse_other_preparation(dst, manifest)
    write_manifest(dst, dataclasses.replace(manifest, complete=False))
    stats = RunStats(total=len(jobs))
    _remove_leftovers({job.destination.parent for job in jobs})
    done = _existing([job.destination for job in jobs])
    todo = [job for job in jobs if job.destination not in done]
    stats.already_done = len(jobs) - len(todo)
    for parent in {job.destination.parent for job in todo}:
        parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(todo), desc=desc, unit=unit, disable=not progress or not todo)
    run = functools.partial(_run_one, work)
    if workers > 1 and len(todo) > 1:
        with multiprocessing.get_context().Pool(workers, initializer=_init_worker) as pool:
            _collect(pool.imap_unordered(run, todo, chunksize=4), stats, bar)
    else:
        _collect(map(run, todo), stats, bar)
    bar.close()
    outputs = _existing([job.destination for job in jobs])
    stats.files = len(outputs)
    stats.bytes = sum(_size(entry) for entry in outputs.values())
    stats.skipped.sort()
    for source, reason in stats.skipped:
        logger.error("skipped %s: %s", source, reason)
    write_manifest(
        dst,
        dataclasses.replace(
            manifest,
            complete=True,
            files=stats.files,
            bytes=stats.bytes,
            skipped=[{"file": str(source), "reason": reason} for source, reason in stats.skipped],
        ),
    )
    return stats


def _collect(
    results: Iterable[tuple[Path, int, str | None]], stats: RunStats, bar: tqdm[Any]
) -> None:
    for source, units, error in results:
        if error is None:
            stats.written += 1
            stats.units += units
        else:
            stats.skipped.append((source, error))
        bar.update()
