"""One image of a pre-resized ImageFolder mirror.

The image is decoded and resized exactly as the jigsaw's first step does it (``load_rgb`` with
``min_size``, then torchvision's antialiased bilinear resize of the short side), so training
on the mirror differs from training on the originals only by the JPEG re-encoding. Images whose
short side is already at most ``short_side`` are copied byte for byte (never upscaled).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image
from torchvision.transforms.v2 import functional as TF

from ssl_rl.data.prepared.runner import UnreadableSourceError
from ssl_rl.data.readers.image_folder import CorruptImageError, load_rgb


def write_resized_image(source: Path, out_file: Path, short_side: int, quality: int = 90) -> int:
    """Writes ``source`` with its short side brought down to ``short_side`` as a JPEG."""
    try:
        image = load_rgb(source, min_size=short_side)  # may already be reduced (JPEG draft)
        with Image.open(source) as header:
            stored_size = header.size
    except CorruptImageError as error:
        raise UnreadableSourceError(str(error)) from error
    if min(stored_size) <= short_side:
        shutil.copyfile(source, out_file)  # decodable, small enough: keep the original bytes
        return 1
    if min(image.shape[-2:]) != short_side:  # as the jigsaw: no resize when it would be a no-op
        image = TF.resize(image, [short_side], antialias=True)
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(out_file, format="JPEG", quality=quality)
    return 1
