"""One source for every video format on disk: AVI files, JPEG frame folders, uint8 frame arrays.

It imports both readers (:mod:`~ssl_rl.data.readers.video_io`,
:mod:`~ssl_rl.data.readers.video_arrays`); neither imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ssl_rl.data.readers.video_arrays import ArrayVideoSource
from ssl_rl.data.readers.video_io import AviVideoSource, CropReader, FrameFolderSource, VideoSource


class AnyVideoSource(VideoSource):
    """Dispatches on the path: a folder is read as JPEG frames, a ``.npy`` file as a uint8 frame
    array (:class:`~ssl_rl.data.readers.video_arrays.ArrayVideoSource`), any other file is
    decoded as a video."""

    def __init__(
        self,
        videos: VideoSource | None = None,
        frame_folders: VideoSource | None = None,
        arrays: VideoSource | None = None,
    ) -> None:
        self.videos = videos if videos is not None else AviVideoSource()
        self.frame_folders = frame_folders if frame_folders is not None else FrameFolderSource()
        self.arrays = arrays if arrays is not None else ArrayVideoSource()

    def _source(self, path: Path) -> VideoSource:
        path = Path(path)
        if path.suffix == ".npy":
            return self.arrays
        return self.frame_folders if path.is_dir() else self.videos

    def num_frames(self, path: Path) -> int:
        return self._source(path).num_frames(path)

    def read_frames(self, path: Path, indices: Sequence[int]) -> torch.Tensor:
        return self._source(path).read_frames(path, indices)

    def crop_reader(self, path: Path) -> CropReader | None:
        """The source of ``path`` when it can read crop windows alone (frame arrays)."""
        source = self._source(path)
        return source if isinstance(source, CropReader) else None
