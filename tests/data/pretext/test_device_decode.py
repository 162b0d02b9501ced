"""JPEG decoding in the device stage (decode=device), exercised on the CPU device."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from ssl_rl.data.pretext.device_decode import DeviceDecodedJigsaw, device_decoding
from ssl_rl.data.pretext.image_parts_dataset import ImagePartsDataset
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.readers.image_folder import jpeg_frame_header, load_rgb
from tests.fixtures.images import (
    add_cmyk_jpeg,
    add_png_named_jpeg,
    add_truncated_jpeg,
    make_image_folder,
)

SMALL = {"grid": 3, "resize": 48, "crop": 48, "tile_crop": 14, "tile_size": 14, "gray_prob": 0.5}


@pytest.fixture()
def images(tmp_path: Path) -> list[Path]:
    """Three images at the jigsaw's short side (48: a prepared mirror), three to resize."""
    at_size = make_image_folder(tmp_path / "mirror", classes=["n01"], per_class=3, size=(64, 48))
    larger = make_image_folder(tmp_path / "train", classes=["n02"], per_class=3, size=(80, 60))
    return sorted(at_size.glob("*/*.JPEG")) + sorted(larger.glob("*/*.JPEG"))


def test_header_gives_the_size_and_components(images: list[Path]) -> None:
    assert jpeg_frame_header(images[0].read_bytes()) == (48, 64, 3)
    assert jpeg_frame_header(images[-1].read_bytes()) == (60, 80, 3)
    assert jpeg_frame_header(b"not a jpeg at all") is None


@pytest.mark.parametrize("train", [True, False])
def test_device_decode_gives_the_worker_decoded_tiles(images: list[Path], train: bool) -> None:
    jigsaw = JigsawTransform(**SMALL, train=train)
    device_decoded = DeviceDecodedJigsaw(jigsaw)
    samples = [
        device_decoded.sample_file(p, torch.Generator().manual_seed(k))
        for k, p in enumerate(images)
    ]
    batch = default_collate(samples)
    assert isinstance(batch["jpeg"], list) and isinstance(batch["jpeg"][0], bytes)
    tiles = device_decoded.finish(batch)
    expected = torch.stack(
        [jigsaw(load_rgb(p), torch.Generator().manual_seed(k)) for k, p in enumerate(images)]
    )
    assert tiles.shape == expected.shape == (len(images), 9, 3, 14, 14)
    assert (tiles - expected).abs().max() <= 1e-5


def test_odd_files_are_decoded_by_the_worker_and_bad_ones_skipped(tmp_path: Path, images) -> None:
    cmyk = add_cmyk_jpeg(tmp_path / "odd" / "cmyk.JPEG", size=(64, 48))
    png = add_png_named_jpeg(tmp_path / "odd" / "png.JPEG", size=(64, 48))
    truncated = add_truncated_jpeg(tmp_path / "odd" / "truncated.JPEG", size=(64, 48), keep=0.3)
    transform = DeviceDecodedJigsaw(JigsawTransform(**SMALL))
    dataset = ImagePartsDataset([cmyk, png, images[0], truncated], transform)
    items = [dataset[i] for i in range(4)]
    assert all(jpeg_frame_header(item["jpeg"])[2] == 3 for item in items)
    tiles = transform.finish(default_collate(items))
    assert tiles.shape == (4, 9, 3, 14, 14) and torch.isfinite(tiles).all()


def test_without_cuda_the_workers_decode(caplog: pytest.LogCaptureFixture) -> None:
    jigsaw = JigsawTransform(**SMALL)
    with caplog.at_level(logging.INFO, logger="ssl_rl.data.pretext.device_decode"):
        chosen = device_decoding(jigsaw)
    if torch.cuda.is_available():
        assert isinstance(chosen, DeviceDecodedJigsaw)
    else:
        assert chosen is jigsaw
