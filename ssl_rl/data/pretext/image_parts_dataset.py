"""Dataset of unpermuted parts (jigsaw tiles, a rotation view, ...) from a list of image files.

Randomness: in training mode every item gets a private generator seeded by
``seed`` and one draw of torch's global RNG. The global RNG differs per
DataLoader worker and epoch (base seed + worker id), and per draw under
``SeededDraws``, so workers never repeat each other's augmentations and runs are
reproducible under ``seed_everything``. With ``transform.train == False`` the
output depends on the file alone (the policy's fixed validation set).

Corrupt files (ImageNet has a few odd files; user copies can be truncated) are
skipped: a warning names the file, the skip is counted, and the next index is
returned instead. More than ``max_consecutive_failures`` failures in a row raise
:class:`DatasetError`, since the dataset then looks broken rather than dirty.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeGuard

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.pretext.device_decode import DeviceDecodedJigsaw
from ssl_rl.data.pretext.two_stage import RawSample, TwoStagePretext
from ssl_rl.data.readers.image_folder import CorruptImageError, load_rgb

logger = logging.getLogger(__name__)

_SKIP_SLOTS = 1024


class PartsTransform(Protocol):
    """A two-stage image transform (:mod:`two_stage`)."""

    resize: int
    train: bool
    host_keys: tuple[str, ...]

    def sample(self, image: torch.Tensor, generator: torch.Generator | None) -> RawSample: ...

    def collate(self, samples: Sequence[RawSample]) -> RawSample: ...

    def finish(self, batch: RawSample) -> torch.Tensor: ...


class FileReadingTransform(PartsTransform, Protocol):
    """A parts transform that reads the file itself (``reads_bytes``: e.g. JPEG bytes for the
    device's decoder) instead of decoded pixels."""

    def sample_file(self, path: Path, generator: torch.Generator | None = None) -> RawSample: ...


def _reads_bytes(transform: PartsTransform) -> TypeGuard[FileReadingTransform]:
    return bool(getattr(transform, "reads_bytes", False))


class PathTable:
    """Read-only list of paths kept in two numpy arrays.

    A Python list of a million ``Path`` objects is copied page by page into every
    forked DataLoader worker as reference counts change; one bytes buffer plus
    offsets is not.
    """

    def __init__(self, paths: Sequence[Path | str]) -> None:
        encoded = [os.fsencode(path) for path in paths]
        self._buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self._ends = np.cumsum([len(item) for item in encoded], dtype=np.int64)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> Path:
        index = range(len(self))[index]  # bounds check, negative indices
        end = int(self._ends[index])
        start = int(self._ends[index - 1]) if index > 0 else 0
        return Path(os.fsdecode(self._buffer[start:end].tobytes()))


class ImagePartsDataset(Dataset[RawSample]):
    """``dataset[i]`` → ``transform.sample(image i)``: the worker stage's uint8 parts and draws;
    ``transform.finish`` of a collated batch gives float parts ``(B, n, 3, size, size)``.

    The transform needs ``resize`` (the least short side it accepts) and ``train`` (False:
    deterministic).
    """

    def __init__(
        self,
        samples: Sequence[Path | str],
        transform: PartsTransform,
        seed: int = 0,
        max_consecutive_failures: int = 50,
    ) -> None:
        if len(samples) == 0:
            raise DatasetError("ImagePartsDataset got an empty list of image files.")
        self.paths = PathTable(samples)
        self.transform = transform
        self.seed = seed
        self.max_consecutive_failures = max_consecutive_failures
        # Files this process skipped; `skipped_count` also sums the skips of all workers.
        self.skipped_files: list[Path] = []
        # One slot per process (0: main, 1 + worker id) in shared memory: no lock, no lost
        # updates, and it survives fork, spawn and forkserver DataLoader workers alike.
        self._skips_per_process = torch.zeros(_SKIP_SLOTS, dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def skipped_count(self) -> int:
        """Skips so far, summed over the main process and all workers.

        A bad file counts once per time it is drawn (e.g. once per epoch).
        """
        return int(self._skips_per_process.sum())

    def summary(self) -> str:
        """One line for the training log."""
        return f"{len(self)} images, {self.skipped_count} corrupt file(s) skipped"

    def __getitem__(self, index: int) -> RawSample:
        for attempt in range(self.max_consecutive_failures + 1):
            path = self.paths[(index + attempt) % len(self)]
            try:
                if _reads_bytes(self.transform):
                    return self.transform.sample_file(path, self._draw_generator())
                image = load_rgb(path, min_size=self.transform.resize)
            except CorruptImageError as error:
                self._record_skip(path, error)
                continue
            return self.transform.sample(image, self._draw_generator())
        raise DatasetError(
            f"{self.max_consecutive_failures + 1} consecutive image files starting at "
            f"{self.paths[index]} could not be decoded; the dataset looks broken "
            f"(truncated copy or wrong folder?)."
        )

    def _draw_generator(self) -> torch.Generator | None:
        """The item's private generator (training mode only; deterministic mode draws nothing)."""
        if not self.transform.train:
            return None
        draw = int(torch.randint(0, 2**62, ()).item())
        state = np.random.SeedSequence([self.seed, draw]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))

    def _record_skip(self, path: Path, error: CorruptImageError) -> None:
        self.skipped_files.append(path)
        worker = get_worker_info()
        slot = 0 if worker is None else 1 + worker.id % (_SKIP_SLOTS - 1)
        self._skips_per_process[slot] += 1
        logger.warning("Skipping undecodable image %s: %s", path, error.__cause__ or error)


@dataclass(frozen=True)
class ImagePretext(TwoStagePretext):
    """A task's data from images: ``transform`` (a partial of a parts transform such as
    :class:`JigsawTransform` or the rotation view, missing only ``train``) per image."""

    transform: Callable[..., PartsTransform]
    val_views: int = 1
    # JPEG decoding: "workers" (CPU, in the loader workers) or "device" (batched in the device
    # stage: nvJPEG on a GPU, libjpeg-turbo when the device stage runs on the CPU; jigsaw only).
    decode: str = "workers"

    def __post_init__(self) -> None:
        if self.decode not in ("workers", "device"):
            raise ValueError(f"pretext.decode must be 'workers' or 'device', got {self.decode!r}")

    def dataset(
        self, samples: Sequence[Path], train: bool, seed: int, views: int = 1
    ) -> ImagePartsDataset:
        if views != 1:
            raise ValueError(f"an image has one fixed view, got views={views}")
        return ImagePartsDataset(list(samples), self._transform(train), seed=seed)

    def finish(self, batch: RawSample) -> torch.Tensor:
        """The device stage of a collated batch of this task's samples (train or fixed)."""
        return self._transform(True).finish(batch)

    @property
    def host_keys(self) -> tuple[str, ...]:
        return self._transform(True).host_keys

    def collate(self, samples: Sequence[RawSample]) -> RawSample:
        return self._transform(True).collate(samples)

    def placed(self, stage_on_device: bool) -> ImagePretext:
        """Decoding on the device needs the device stage: where the loader workers run it
        (``data.device_stage=workers``, or ``auto`` on a CPU), they decode as well."""
        if self.decode != "device" or stage_on_device:
            return self
        logger.info(
            "pretext.decode=device, but the device stage runs in the loader workers "
            "(data.device_stage=workers, or auto on a CPU run): the workers decode the JPEGs. "
            "Set data.device_stage=device to decode in the device stage on this device."
        )
        return replace(self, decode="workers")

    def _transform(self, train: bool) -> PartsTransform:
        transform = self.transform(train=train)
        if self.decode == "device":
            return DeviceDecodedJigsaw(transform)  # type: ignore[arg-type, return-value]
        return transform
