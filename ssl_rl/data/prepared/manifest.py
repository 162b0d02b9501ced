"""``prepared.json``: what a prepared folder holds, from which source, made how.

A preparation command writes it at the root of its output folder, with ``complete: false`` when
it starts and ``true`` when every source file was either written or counted as a skip. Readers
call :func:`check_prepared` so that a half-made folder, one of an older format version, or one
made with other settings is refused with the command that remakes it.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ssl_rl.data.errors import DatasetError

MANIFEST_NAME = "prepared.json"
# Bump a kind's version whenever its files change meaning: older folders are then refused.
FORMAT_VERSION: dict[str, int] = {"images": 1, "video_uint8": 1, "video_jpeg": 1}
VIDEO_KINDS = ("video_uint8", "video_jpeg")
_MODULE_OF_KIND = {
    "images": "ssl_rl.data.prepare_images",
    "video_uint8": "ssl_rl.data.prepare_frames",
    "video_jpeg": "ssl_rl.data.prepare_frames",
}
_MAX_LISTED = 5


@dataclass(frozen=True)
class Manifest:
    """The contents of one ``prepared.json``."""

    kind: str
    version: int
    source: str
    settings: dict[str, Any]
    complete: bool = False
    files: int = 0
    bytes: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    command: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def manifest_path(root: Path | str) -> Path:
    return Path(root) / MANIFEST_NAME


def canonical_command(
    kind: str, dst: Path | str, settings: Mapping[str, Any], source: Path | str | None = None
) -> str:
    """The command line that prepares ``dst`` of ``kind`` with ``settings``."""
    if kind not in FORMAT_VERSION:
        raise ValueError(f"unknown prepared kind {kind!r}; one of {sorted(FORMAT_VERSION)}")
    src = shlex.quote(str(source)) if source is not None else "<source folder>"
    words = ["python", "-m", _MODULE_OF_KIND[kind], "--src", src, "--dst", shlex.quote(str(dst))]
    if kind in VIDEO_KINDS:
        words += ["--format", kind.removeprefix("video_")]
    for key, value in settings.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        words += [flag] if value is True else [flag, shlex.quote(str(value))]
    return " ".join(words)


def read_manifest(root: Path | str) -> Manifest | None:
    """The manifest of ``root``, or None when it has none; a malformed one is an error."""
    path = manifest_path(root)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return Manifest(
            kind=str(data["kind"]),
            version=int(data["version"]),
            source=str(data["source"]),
            settings=dict(data["settings"]),
            complete=bool(data["complete"]),
            files=int(data["files"]),
            bytes=int(data["bytes"]),
            skipped=[dict(item) for item in data["skipped"]],
            command=str(data["command"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(
            f"{path} is not a valid preparation manifest ({type(error).__name__}: {error}); "
            f"delete {path.parent} and prepare it again"
        ) from error


def write_manifest(root: Path | str, manifest: Manifest) -> None:
    """Writes ``root/prepared.json`` atomically (a reader never sees half a manifest)."""
    path = manifest_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(manifest.to_json() + "\n")
    os.replace(tmp, path)


def check_prepared(
    root: Path | str,
    kind: str,
    required: Mapping[str, Any],
    config_key: str,
    source: Path | str | None = None,
) -> Manifest:
    """The manifest of ``root`` if it is complete, of ``kind`` and this format version, with
    the ``required`` settings (and, when given, made from ``source``); else DatasetError naming
    the folder, what differs, ``config_key`` and the command to rerun."""
    root = Path(root)
    manifest = read_manifest(root)
    fallback = canonical_command(kind, root, required, source)
    if manifest is None:
        raise DatasetError(
            f"{root} (`{config_key}`) has no {MANIFEST_NAME}: it was not made by the preparation "
            f"command. Prepare it with: {fallback}"
        )
    problems = []
    if manifest.kind != kind:
        problems.append(f"it holds kind {manifest.kind!r}, not {kind!r}")
    elif manifest.version != FORMAT_VERSION[kind]:
        problems.append(
            f"format version {manifest.version}, this code reads version {FORMAT_VERSION[kind]}"
        )
    for key, wanted in required.items():
        have = manifest.settings.get(key)
        if have != wanted:
            problems.append(f"setting {key} is {have!r} but {wanted!r} is required")
    if source is not None and Path(manifest.source).resolve() != Path(source).resolve():
        problems.append(f"it was made from {manifest.source}, not from {Path(source).resolve()}")
    if problems:
        settings = required if manifest.kind != kind else {**manifest.settings, **required}
        raise DatasetError(
            f"prepared folder {root} (`{config_key}`) cannot be used: {'; '.join(problems)}. "
            f"Point `{config_key}` at a matching folder, or delete this one and rerun: "
            f"{canonical_command(kind, root, settings, source or manifest.source)}"
        )
    if not manifest.complete:
        raise DatasetError(
            f"prepared folder {root} (`{config_key}`) is incomplete: its preparation did not "
            f"finish. Rerun it (it resumes where it stopped): {manifest.command or fallback}"
        )
    return manifest


def check_video_frames_root(root: Path | str, config_key: str) -> Manifest | None:
    """Checks a ``frames_root`` that holds a manifest (complete, a video kind, this version);
    None for a folder without one (frames extracted before manifests existed)."""
    manifest = read_manifest(root)
    if manifest is None:
        return None
    kind = manifest.kind if manifest.kind in VIDEO_KINDS else VIDEO_KINDS[0]
    return check_prepared(root, kind, {}, config_key)
