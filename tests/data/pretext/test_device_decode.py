"""JPEG decoding in the device stage (decode=device), exercised on the CPU device."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import pytest
import torch

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.pretext import device_decode
from ssl_rl.data.pretext.device_decode import DeviceDecodedJigsaw
from ssl_rl.data.pretext.image_parts_dataset import ImagePartsDataset, ImagePretext
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.readers.image_folder import jpeg_frame_header, load_rgb
from ssl_rl.run.training import train
from tests.fixtures.images import (
    add_cmyk_jpeg,
    add_png_named_jpeg,
    add_truncated_jpeg,
    make_image_folder,
)

CUDA = torch.cuda.is_available()
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
    batch = device_decoded.collate(samples)
    # A few tensors, no Python objects: all bytes in one uint8 tensor plus sizes.
    assert all(isinstance(value, torch.Tensor) for value in batch.values())
    assert batch["jpeg"].dtype == torch.uint8 and batch["jpeg"].ndim == 1
    assert batch["jpeg_sizes"].tolist() == [p.stat().st_size for p in images]
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
    assert all(jpeg_frame_header(item["jpeg"].numpy().tobytes())[2] == 3 for item in items)
    tiles = transform.finish(transform.collate(items))
    assert tiles.shape == (4, 9, 3, 14, 14) and torch.isfinite(tiles).all()


def test_a_batch_no_file_of_which_decodes_names_the_files(tmp_path: Path, images) -> None:
    transform = DeviceDecodedJigsaw(JigsawTransform(**SMALL))
    batch = transform.collate(
        [transform.sample_file(p, torch.Generator().manual_seed(0)) for p in images[:2]]
    )
    batch["jpeg"] = torch.zeros_like(batch["jpeg"])  # headers gone: nothing decodes
    with pytest.raises(DatasetError, match=f"{images[0]}.*{images[1]}"):
        transform.finish(batch)


def test_decoding_follows_the_device_stage(caplog: pytest.LogCaptureFixture) -> None:
    pretext = ImagePretext(partial(JigsawTransform, **SMALL), decode="device")
    assert pretext.placed(stage_on_device=True) is pretext
    with caplog.at_level(logging.INFO, logger="ssl_rl.data.pretext.image_parts_dataset"):
        in_workers = pretext.placed(stage_on_device=False)
    assert in_workers.decode == "workers" and "data.device_stage=device" in caplog.text
    assert in_workers.host_keys == () and "jpeg" in pretext.host_keys


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="needs a GPU"))],
)
def test_decode_device_trains_through_the_trainer(
    compose_train, monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    """decode=device with the device stage on the training device (forced onto the CPU there):
    the batch crosses Lightning's transfer as tensors (bytes left on the host) and the device
    stage decodes it, one batched call per step."""
    calls: list[tuple[int, str]] = []
    real_decode = device_decode.decode_jpeg

    def counting_decode(data, **kwargs):
        calls.append((len(data) if isinstance(data, list) else 1, str(kwargs.get("device"))))
        return real_decode(data, **kwargs)

    monkeypatch.setattr(device_decode, "decode_jpeg", counting_decode)
    cfg = compose_train(
        [
            "experiment=s",
            "tasks.spatial.pretext.decode=device",
            "data.device_stage=device",
            "trainer.max_steps=3",
            f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
        ]
    )
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["steps"] == 3
    batch = cfg.data.batch_size
    on = "cuda:0" if device == "cuda" else "cpu"
    assert calls.count((batch, on)) >= 3  # one batched decode per training step
