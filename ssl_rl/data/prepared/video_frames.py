"""Decoding a video once into its stored frames: uint8 arrays (``.npy``) or JPEG folders.

Frames are kept in decoding order, every ``stride``-th from frame 0, RGB, with the short side
brought down to ``short_side`` (never up). uint8 arrays are resized with torch's antialiased
bilinear uint8 kernel on channels-last frames, the resampler ClipTransform uses at train time;
JPEG folders with PIL's (antialiased) bilinear, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ssl_rl.data.prepared.runner import UnreadableSourceError
from ssl_rl.data.readers.video_io import frame_to_rgb

FRAME_TEMPLATE = "img_{:05d}.jpg"
_RESIZE_BATCH = 32  # frames resized at once: bounds memory, keeps the kernel busy


def uint8_short_side(resize_short: int, crop: int, frame_size: int) -> int:
    """Short side at which the clip transform's ``crop`` box (taken after resizing the short
    side to ``resize_short``) spans exactly ``frame_size`` px: train-time crop-then-resize then
    becomes a crop. Paper scale: (128, 112, 64) → 73."""
    if min(resize_short, crop, frame_size) <= 0 or crop > resize_short:
        raise ValueError(
            f"need 0 < crop <= resize_short and frame_size > 0, got resize_short={resize_short}, "
            f"crop={crop}, frame_size={frame_size}"
        )
    return round(resize_short * frame_size / crop)


def resized_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side brought down to ``short_side``; never upscales.

    The long side is rounded, as ClipTransform rounds it."""
    if short_side is None or min(width, height) <= short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def decoded_frames(video: Path, stride: int = 1) -> Iterator[np.ndarray]:
    """RGB uint8 (H, W, 3) frames 0, stride, 2·stride, ... of ``video``.

    Raises UnreadableSourceError when the file cannot be decoded or yields no frame."""
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    count = 0
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise UnreadableSourceError("the file has no video stream")
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for ordinal, frame in enumerate(container.decode(stream)):
                if ordinal % stride == 0:
                    count += 1
                    yield frame_to_rgb(frame)
    except av.FFmpegError as error:
        if count == 0:
            raise UnreadableSourceError(f"cannot decode the video ({error})") from error
        raise UnreadableSourceError(
            f"decoding failed after {count} stored frames ({error})"
        ) from error
    if count == 0:
        raise UnreadableSourceError("no decodable frames")


def _resize_batch(frames: list[np.ndarray], short_side: int | None) -> np.ndarray:
    try:
        batch = np.stack(frames)
    except ValueError as error:
        raise UnreadableSourceError(f"frames of different sizes ({error})") from error
    height, width = batch.shape[1:3]
    new_width, new_height = resized_size(width, height, short_side)
    if (new_width, new_height) == (width, height):
        return batch
    # (T, H, W, 3) memory seen as (T, 3, H, W): channels-last, torch's fast uint8 path.
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2)
    resized = F.interpolate(tensor, size=(new_height, new_width), mode="bilinear", antialias=True)
    return resized.permute(0, 2, 3, 1).contiguous().numpy()


def write_uint8_array(video: Path, out_file: Path, short_side: int | None, stride: int) -> int:
    """Saves the stored frames of ``video`` as one (T, H, W, 3) uint8 ``.npy``; returns T."""
    chunks, pending = [], []
    for frame in decoded_frames(video, stride):
        pending.append(frame)
        if len(pending) == _RESIZE_BATCH:
            chunks.append(_resize_batch(pending, short_side))
            pending = []
    if pending:
        chunks.append(_resize_batch(pending, short_side))
    try:
        array = np.ascontiguousarray(np.concatenate(chunks))
    except ValueError as error:
        raise UnreadableSourceError(f"frames of different sizes ({error})") from error
    with open(out_file, "wb") as handle:  # a handle: np.save would append ".npy" to a name
        np.save(handle, array, allow_pickle=False)
    return len(array)


def write_jpeg_frames(
    video: Path, out_dir: Path, short_side: int | None, stride: int, quality: int = 90
) -> int:
    """Saves the stored frames of ``video`` as ``out_dir/img_00001.jpg, ...``; returns the count."""
    out_dir.mkdir()
    count = 0
    for frame in decoded_frames(video, stride):
        image = Image.fromarray(frame)
        size = resized_size(image.width, image.height, short_side)
        if size != image.size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        count += 1
        image.save(out_dir / FRAME_TEMPLATE.format(count), quality=quality)
    return count
