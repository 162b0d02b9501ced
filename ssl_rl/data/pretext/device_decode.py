"""Jigsaw puzzles whose JPEGs are decoded on the GPU (nvJPEG through torchvision), batched.

JPEG decoding is most of a loader worker's time per puzzle (README: paper-scale data). With
``tasks.spatial.pretext.decode=device`` a worker only reads the file's bytes, parses the frame
header for the image size and draws the puzzle's random numbers; the device decodes the batch
(``torchvision.io.decode_jpeg(list, device=...)``), resizes where the image is not already at
the jigsaw's short side, crops, gathers the tile windows and runs the usual second stage. On
a machine without CUDA the workers decode as usual (a logged note). The draws and, for images
at the short side (a prepared mirror), the tiles equal the worker-decoded path's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg
from torchvision.transforms.v2 import functional as TF

from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.pretext.two_stage import RawSample, TwoStageTransform
from ssl_rl.data.readers.image_folder import jpeg_frame_header, load_rgb

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceDecodedJigsaw(TwoStageTransform):
    """A :class:`JigsawTransform` whose worker stage ships JPEG bytes instead of pixels."""

    jigsaw: JigsawTransform
    reads_bytes = True

    @property
    def resize(self) -> int:
        return self.jigsaw.resize

    @property
    def train(self) -> bool:
        return self.jigsaw.train

    def sample_file(self, path: Path, generator: torch.Generator | None = None) -> RawSample:
        """Worker stage: the file's JPEG bytes and the puzzle's draws (``corner``: the crop,
        ``corners``: the tile windows in the crop, ``offsets``, ``gray``).

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
            "jpeg": data,  # collated into a list of bytes
            "corner": torch.tensor([draws.top, draws.left]),
            "corners": torch.tensor([draws.tops, draws.lefts]).T,
            "offsets": torch.from_numpy(draws.offsets),
            "gray": torch.from_numpy(np.array(draws.gray)),
        }

    def finish(self, batch: RawSample) -> torch.Tensor:
        """Device stage: decode the batch where ``offsets`` lie, then the jigsaw's second stage."""
        device = batch["offsets"].device
        encoded = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in batch["jpeg"]]
        images, sources = _decode_all(encoded, device)
        corner_list, corners_list = batch["corner"].tolist(), batch["corners"].tolist()
        windows = []
        for image, source in zip(images, sources, strict=True):
            corner, corners = corner_list[source], corners_list[source]
            if min(image.shape[-2:]) != self.jigsaw.resize:
                image = TF.resize(image, [self.jigsaw.resize], antialias=True)
            tops, lefts = [c[0] for c in corners], [c[1] for c in corners]
            windows.append(self.jigsaw.windows(image, corner[0], corner[1], tops, lefts))
        index = torch.tensor(sources, device=device)
        stacked = {"windows": torch.stack(windows), "offsets": batch["offsets"][index]}
        return self.jigsaw.finish(stacked | {"gray": batch["gray"][index.to(batch["gray"].device)]})


def _decode_all(
    encoded: list[torch.Tensor], device: torch.device
) -> tuple[list[torch.Tensor], list[int]]:
    """The batch decoded on ``device``, and which sample each image is: a file only the device
    fails on is replaced by (the image and draws of) a decodable one, logged, so that one bad
    file does not stop training."""
    try:
        images = list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
        return images, list(range(len(images)))
    except RuntimeError:
        pass
    decoded: dict[int, torch.Tensor] = {}
    for index, data in enumerate(encoded):
        try:
            decoded[index] = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        except RuntimeError as error:
            logger.warning("device JPEG decode failed (%s); the batch reuses another image", error)
    if not decoded:
        raise RuntimeError("no JPEG of the batch could be decoded on the device")
    first = next(iter(decoded))
    sources = [index if index in decoded else first for index in range(len(encoded))]
    return [decoded[source] for source in sources], sources


def device_decoding(jigsaw: JigsawTransform) -> DeviceDecodedJigsaw | JigsawTransform:
    """The device-decoding transform when CUDA is there; otherwise the workers decode."""
    if torch.cuda.is_available():
        return DeviceDecodedJigsaw(jigsaw)
    global _noted
    if not _noted:
        logger.info("decode=device but no CUDA device is available: the workers decode JPEGs")
        _noted = True
    return jigsaw


_noted = False
