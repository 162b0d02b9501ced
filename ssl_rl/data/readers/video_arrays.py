"""Frames stored as one (T, H, W, 3) uint8 ``.npy`` per video, read through a memory map.

Made by ``python -m ssl_rl.data.prepare_frames --format uint8``. Only the header is parsed
once per path (cached); each read maps the file anew (a cached map per video would keep one
file descriptor per video open in every loader worker) and copies just the requested frames,
or just the crop windows with :meth:`ArrayVideoSource.read_crops`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepared.manifest import read_manifest
from ssl_rl.data.readers.video_io import CorruptVideoError, VideoSource, _check_indices


@dataclass(frozen=True)
class _ArrayInfo:
    shape: tuple[int, int, int, int]  # (T, H, W, 3)
    offset: int  # bytes before the data


def _reprepare_hint(path: Path) -> str:
    """How to remake ``path``: delete it (a re-run skips existing files) and rerun."""
    command = "python -m ssl_rl.data.prepare_frames --format uint8 --src <videos> --dst <folder>"
    try:
        manifest = read_manifest(path.parent.parent)
    except DatasetError:  # a broken manifest must not hide the original error
        manifest = None
    if manifest is not None and manifest.command:
        command = manifest.command
    return f"delete it and rerun: {command}"


class ArrayVideoSource(VideoSource):
    """Random access to the frames of ``.npy`` frame arrays; caches each file's header."""

    def __init__(self) -> None:
        self._info: dict[Path, _ArrayInfo] = {}

    def num_frames(self, path: Path) -> int:
        return self._header(Path(path)).shape[0]

    def frame_size(self, path: Path) -> tuple[int, int]:
        """(height, width) of the stored frames."""
        shape = self._header(Path(path)).shape
        return shape[1], shape[2]

    def read_frames(self, path: Path, indices: Sequence[int]) -> torch.Tensor:
        path = Path(path)
        info = self._header(path)
        self._check_range(path, info, indices)
        array = self._map(path, info)
        frames = np.ascontiguousarray(array[np.asarray(indices, dtype=np.int64)])
        return torch.from_numpy(frames).permute(0, 3, 1, 2)

    def read_crops(
        self,
        path: Path,
        indices: Sequence[int],
        tops: Sequence[int],
        lefts: Sequence[int],
        size: int,
    ) -> torch.Tensor:
        """The ``size`` × ``size`` window at (``tops[i]``, ``lefts[i]``) of frame ``indices[i]``,
        as uint8 (len(indices), 3, size, size); only those windows are read from disk."""
        path = Path(path)
        info = self._header(path)
        if not len(indices) == len(tops) == len(lefts):
            raise ValueError(
                f"{path}: {len(indices)} indices but {len(tops)} tops and {len(lefts)} lefts"
            )
        self._check_range(path, info, indices)
        height, width = info.shape[1:3]
        for top, left in zip(tops, lefts, strict=True):
            if not (0 <= top <= height - size and 0 <= left <= width - size) or size <= 0:
                raise ValueError(
                    f"{path}: crop of {size} px at top={top}, left={left} is outside the "
                    f"{height}x{width} frames"
                )
        array = self._map(path, info)
        out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        for row, (index, top, left) in enumerate(zip(indices, tops, lefts, strict=True)):
            out[row] = array[index, top : top + size, left : left + size]
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    @staticmethod
    def _check_range(path: Path, info: _ArrayInfo, indices: Sequence[int]) -> None:
        wanted = _check_indices(path, indices)
        if wanted[-1] >= info.shape[0]:
            raise ValueError(f"{path}: frame index {wanted[-1]} out of range ({info.shape[0]})")

    def _map(self, path: Path, info: _ArrayInfo) -> np.ndarray:
        try:
            return np.memmap(path, dtype=np.uint8, mode="r", offset=info.offset, shape=info.shape)
        except (OSError, ValueError) as error:
            self._info.pop(path, None)
            raise CorruptVideoError(
                f"{path}: cannot map the frame array ({error}); {_reprepare_hint(path)}"
            ) from error

    def _header(self, path: Path) -> _ArrayInfo:
        cached = self._info.get(path)
        if cached is None:
            cached = self._info[path] = self._read_header(path)
        return cached

    @staticmethod
    def _read_header(path: Path) -> _ArrayInfo:
        try:
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
                offset = handle.tell()
            size = path.stat().st_size
        except FileNotFoundError as error:
            raise CorruptVideoError(f"{path}: frame array does not exist") from error
        except (OSError, ValueError) as error:
            raise CorruptVideoError(
                f"{path}: not a readable .npy frame array ({error}); {_reprepare_hint(path)}"
            ) from error
        if dtype != np.uint8 or fortran or len(shape) != 4 or shape[3] != 3 or shape[0] == 0:
            raise CorruptVideoError(
                f"{path}: expected a C-order uint8 (T>0, H, W, 3) array, got {dtype} "
                f"{'Fortran-order ' if fortran else ''}{shape}; {_reprepare_hint(path)}"
            )
        needed = offset + int(np.prod(shape))
        if size < needed:
            raise CorruptVideoError(
                f"{path}: truncated ({size} bytes, the header needs {needed}); "
                f"{_reprepare_hint(path)}"
            )
        return _ArrayInfo(shape=tuple(int(n) for n in shape), offset=offset)  # type: ignore[arg-type]
