"""Jigsaw puzzles whose JPEGs are decoded in the device stage, batched (nvJPEG on a GPU).

JPEG decoding is most of a loader worker's time per puzzle (docs/paper-scale.md). With
``tasks.spatial.pretext.decode=device`` a worker only reads the file's bytes, parses the frame
header for the image size and draws the puzzle's random numbers. A batch crosses to the device
as a few tensors: all its JPEG bytes packed into one uint8 tensor with their sizes (likewise the
file names, for messages), which stay in host memory through the transfer (the decoder reads
them there), and the draws. The device stage decodes the batch
(``torchvision.io.decode_jpeg(list, device=...)``: nvJPEG on a GPU, libjpeg-turbo on a CPU),
resizes where the image is not already at the jigsaw's short side, crops, gathers every tile
window in one indexing operation and runs the jigsaw's second stage. The draws and, for images
at the short side (a prepared mirror), the tiles equal the worker-decoded path's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate
from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg
from torchvision.transforms.v2 import functional as TF

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.host_to_device import to_device_async
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.pretext.two_stage import RawSample, TwoStageTransform
from ssl_rl.data.readers.image_folder import jpeg_frame_header, load_rgb

logger = logging.getLogger(__name__)

# Variable-length byte strings of a sample, packed per batch into one tensor plus sizes.
PACKED_KEYS = ("jpeg", "path")


@dataclass(frozen=True)
class DeviceDecodedJigsaw(TwoStageTransform):
    """A :class:`JigsawTransform` whose worker stage ships JPEG bytes instead of pixels."""

    jigsaw: JigsawTransform
    reads_bytes = True
    # Read by the host in `finish` (the decoder's input, sizes, crop corners): never moved.
    host_keys = (
        *PACKED_KEYS,
        *(f"{key}_sizes" for key in PACKED_KEYS),
        "corner",
        "corners",
        "window",
    )

    @property
    def resize(self) -> int:
        return self.jigsaw.resize

    @property
    def train(self) -> bool:
        return self.jigsaw.train

    def sample_file(self, path: Path, generator: torch.Generator | None = None) -> RawSample:
        """Worker stage: the file's JPEG bytes and name (uint8 tensors) and the puzzle's draws
        (``corner``: the crop, ``corners``: the tile windows in the crop and ``window`` their
        side, ``offsets``, ``gray``).

        Files the device cannot decode as RGB JPEGs (CMYK, PNG named .JPEG: a handful in
        ImageNet) are decoded here and re-encoded (quality 95); an undecodable file raises
        the reader's CorruptImageError, a counted skip of the dataset."""
        data = Path(path).read_bytes()
        header = jpeg_frame_header(data)
        if header is None or header[2] not in (1, 3):
            image = load_rgb(Path(path))
            data = encode_jpeg(image.contiguous(), quality=95).numpy().tobytes()
            header = (image.shape[1], image.shape[2], 3)
        height, width = self.jigsaw.resized_size(header[0], header[1])
        draws = self.jigsaw.draw(height, width, generator)
        return {
            "jpeg": _as_bytes_tensor(data),
            "path": _as_bytes_tensor(os.fsencode(path)),
            "corner": torch.tensor([draws.top, draws.left]),
            "corners": torch.tensor([draws.tops, draws.lefts]).T,
            # The window side differs between training and fixed puzzles (no shift room).
            "window": torch.tensor(self.jigsaw.window),
            "offsets": torch.from_numpy(draws.offsets),
            "gray": torch.from_numpy(np.array(draws.gray)),
        }

    def collate(self, samples: Sequence[RawSample]) -> RawSample:
        """One batch: the byte strings packed (``jpeg`` + ``jpeg_sizes``, ``path`` +
        ``path_sizes``), the draws stacked."""
        rest = [{k: v for k, v in s.items() if k not in PACKED_KEYS} for s in samples]
        batch: RawSample = default_collate(rest)
        for key in PACKED_KEYS:
            chunks = [s[key] for s in samples]
            batch[key] = torch.cat(chunks)
            batch[f"{key}_sizes"] = torch.tensor([len(c) for c in chunks], dtype=torch.int64)
        return batch

    def finish(self, batch: RawSample) -> torch.Tensor:
        """Device stage: decode the batch where ``offsets`` lie, then the jigsaw's second stage."""
        device = batch["offsets"].device
        encoded = _unpack(batch, "jpeg")
        images, sources = _decode_all(encoded, device, lambda: _file_names(batch))
        corner_list = batch["corner"].tolist()
        crop = self.jigsaw.crop
        crops = []
        for image, source in zip(images, sources, strict=True):
            if min(image.shape[-2:]) != self.jigsaw.resize:
                image = TF.resize(image, [self.jigsaw.resize], antialias=True)
            top, left = corner_list[source]
            crops.append(image[:, top : top + crop, left : left + crop])
        index = torch.tensor(sources)
        corners = to_device_async(batch["corners"].cpu()[index], device)
        # Every window of every crop as a view (B, 3, Y, X, w, w); one gather takes the tiles'.
        size = int(batch["window"][0])
        views = torch.stack(crops).unfold(2, size, 1).unfold(3, size, 1)
        rows = torch.arange(len(crops), device=device)[:, None]
        windows = views[rows, :, corners[..., 0], corners[..., 1]]  # (B, K, 3, w, w)
        on_device = to_device_async(index, device)
        return self.jigsaw.finish(
            {
                "windows": windows.permute(0, 1, 3, 4, 2),
                "offsets": batch["offsets"][on_device],
                "gray": batch["gray"][on_device.to(batch["gray"].device)],
            }
        )


def _as_bytes_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _unpack(batch: RawSample, key: str) -> list[torch.Tensor]:
    """The batch's byte strings of ``key`` as CPU tensors (views of the packed one)."""
    packed, sizes = batch[key].cpu(), batch[f"{key}_sizes"].cpu()
    return list(torch.split(packed, sizes.tolist()))


def _file_names(batch: RawSample) -> list[str]:
    return [os.fsdecode(bytes(chunk.numpy())) for chunk in _unpack(batch, "path")]


def _decode_all(
    encoded: list[torch.Tensor], device: torch.device, names: Callable[[], list[str]]
) -> tuple[list[torch.Tensor], list[int]]:
    """The batch decoded on ``device``, and which sample each image is: a file only the device
    fails on is replaced by (the image and draws of) a decodable one, logged by name, so that
    one bad file does not stop training. ``names`` gives the file names (called on failure)."""
    try:
        images = list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
        return images, list(range(len(images)))
    except RuntimeError:
        pass
    files = names()
    decoded: dict[int, torch.Tensor] = {}
    for index, data in enumerate(encoded):
        try:
            decoded[index] = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        except RuntimeError as error:
            logger.warning(
                "%s: JPEG decoding on %s failed (%s); the batch uses another of its images "
                "in its place",
                files[index],
                device,
                error,
            )
    if not decoded:
        raise DatasetError(
            f"no JPEG of a training batch could be decoded on {device}: {', '.join(files)}. "
            'Check these files (python -c "from PIL import Image; Image.open(f).load()"), '
            "or decode in the loader workers: tasks.spatial.pretext.decode=workers"
        )
    first = next(iter(decoded))
    sources = [index if index in decoded else first for index in range(len(encoded))]
    return [decoded[source] for source in sources], sources
