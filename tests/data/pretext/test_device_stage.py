"""The two-stage transforms (uint8 worker stage + batched device stage) against the
single-stage CPU pipelines they replaced, for the same random draws."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from omegaconf import DictConfig
from torch.utils.data import default_collate

from ssl_rl.data.pretext import two_stage
from ssl_rl.data.pretext.clip_transform import ClipTransform
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.pretext.rotation import RotationTransform
from ssl_rl.run.training import build_data_and_model
from tests.data.pretext.cpu_reference import reference_clip, reference_jigsaw, reference_rotation

TOLERANCE = 1e-5
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _images(count: int) -> list[torch.Tensor]:
    """Photo-like uint8 images of several sizes: smooth gradients plus noise."""
    images = []
    for k in range(count):
        generator = torch.Generator().manual_seed(k)
        height, width = 180 + 23 * k, 260 - 17 * k
        ramp = torch.linspace(0, 200, width)[None, None] + torch.linspace(0, 50, height)[:, None]
        noise = torch.randint(0, 40, (3, height, width), generator=generator)
        images.append((ramp + noise).clamp(0, 255).to(torch.uint8))
    return images


def _reads(free: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``masked``: the GPU's sync-free path (every sample through the optional steps, masked),
    forced on the CPU too."""
    if not free:
        monkeypatch.setattr(two_stage, "FREE_READS", ())


def _batched(transform, inputs: list[torch.Tensor], seeds: list[int], device: str):
    samples = [
        transform.sample(x, torch.Generator().manual_seed(s))
        for x, s in zip(inputs, seeds, strict=True)
    ]
    batch = {key: value.to(device) for key, value in default_collate(samples).items()}
    return transform.finish(batch).cpu()


@pytest.mark.parametrize("free_reads", [True, False], ids=["host-reads", "masked"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(
    "config",
    [
        {},  # paper: 256 / 255 / 64, shift 2
        {"resize": 128, "crop": 126, "tile_crop": 36, "tile_size": 36},  # demo
        {"resize": 128, "crop": 126, "tile_crop": 36, "tile_size": 32},  # tiles resized
        {"resize": 48, "crop": 48, "tile_crop": 14, "tile_size": 14, "channel_shift": 2},
        {"resize": 48, "crop": 48, "tile_crop": 12, "tile_size": 12, "channel_shift": 3},
    ],
)
def test_jigsaw_device_stage_matches_the_cpu_pipeline(
    config: dict, train: bool, device: str, free_reads: bool, monkeypatch: pytest.MonkeyPatch
):
    _reads(free_reads, monkeypatch)
    # gray_prob 0.5 so that one batch mixes gray and colour puzzles.
    transform = JigsawTransform(**config, gray_prob=0.5, train=train)
    images, seeds = _images(6), list(range(6))
    expected = torch.stack(
        [
            reference_jigsaw(transform, x, torch.Generator().manual_seed(s))
            for x, s in zip(images, seeds, strict=True)
        ]
    )
    assert (_batched(transform, images, seeds, device) - expected).abs().max() <= TOLERANCE
    if train:
        gray = [
            bool(transform.sample(x, torch.Generator().manual_seed(s))["gray"])
            for x, s in zip(images, seeds, strict=True)
        ]
        assert any(gray) and not all(gray)


@pytest.mark.parametrize("free_reads", [True, False], ids=["host-reads", "masked"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(
    "colour",
    [{}, {"channel_split": True}, {"gray_prob": 0.5}, {"channel_split": True, "gray_prob": 0.5}],
)
@pytest.mark.parametrize(
    "geometry",
    [
        {"frame_size": 64, "resize_short": 128, "crop": 112, "jitter": 4},  # paper
        {"frame_size": 36, "resize_short": 48, "crop": 44, "jitter": 2},  # demo
    ],
)
def test_clip_device_stage_matches_the_cpu_pipeline(
    geometry: dict,
    colour: dict,
    train: bool,
    device: str,
    free_reads: bool,
    monkeypatch: pytest.MonkeyPatch,
):
    _reads(free_reads, monkeypatch)
    transform = ClipTransform(**geometry, **colour, train=train)
    clips = [
        torch.randint(
            0, 256, (8, 3, 240, 320), dtype=torch.uint8, generator=torch.Generator().manual_seed(k)
        )
        for k in range(4)
    ]
    seeds = [10, 11, 12, 13]
    expected = torch.stack(
        [
            reference_clip(transform, c, torch.Generator().manual_seed(s))
            for c, s in zip(clips, seeds, strict=True)
        ]
    )
    assert (_batched(transform, clips, seeds, device) - expected).abs().max() <= TOLERANCE


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("train", [True, False])
def test_rotation_device_stage_matches_the_cpu_pipeline(train: bool, device: str):
    transform = RotationTransform(resize=80, crop=64, size=32, train=train)
    images, seeds = _images(4), [3, 4, 5, 6]
    expected = torch.stack(
        [
            reference_rotation(transform, x, torch.Generator().manual_seed(s))
            for x, s in zip(images, seeds, strict=True)
        ]
    )
    assert (_batched(transform, images, seeds, device) - expected).abs().max() <= TOLERANCE


def test_workers_ship_uint8_and_a_quarter_of_the_bytes():
    transform = JigsawTransform()
    sample = transform.sample(_images(1)[0], torch.Generator().manual_seed(0))
    assert sample["windows"].dtype == torch.uint8
    shipped = sum(t.numel() * t.element_size() for t in sample.values())
    floats = 9 * 3 * 64 * 64 * 4
    assert shipped < floats / 3  # 68 px windows (room for the ±2 px channel shifts)


def test_prescaled_clip_transform_crops_without_resampling():
    transform = ClipTransform(frame_size=64, resize_short=128, crop=112, jitter=4)
    prescaled = transform.prescaled()
    assert transform.prescaled_short_side == 73
    assert (prescaled.resize_short, prescaled.crop, prescaled.jitter) == (73, 64, 2)
    # Frames stored at short side 73 (320 × 240 → 97 × 73): the sample is a crop of them.
    frames = torch.randint(0, 256, (8, 73, 97, 3), dtype=torch.uint8).permute(0, 3, 1, 2)
    sample = prescaled.sample(frames, torch.Generator().manual_seed(0))["frames"]
    first = frames[0].permute(1, 2, 0)
    hits = [
        (y, x)
        for y in range(73 - 64 + 1)
        for x in range(97 - 64 + 1)
        if torch.equal(first[y : y + 64, x : x + 64], sample[0])
    ]
    assert len(hits) == 1


@pytest.mark.parametrize(
    ("stage", "decode"), [("device", "workers"), ("workers", "workers"), ("device", "device")]
)
def test_datamodule_batches_are_the_same_wherever_the_second_stage_runs(
    compose_train: Callable[..., DictConfig], stage: str, decode: str
) -> None:
    cfg = compose_train(
        [
            "experiment=st",
            f"data.device_stage={stage}",
            f"tasks.spatial.pretext.decode={decode}",
            "data.num_workers=0",
        ]
    )
    datamodule, _ = build_data_and_model(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.finishes_in_workers() == (stage == "workers")
    torch.manual_seed(0)
    batch = next(iter(datamodule.train_dataloader()))
    batch = datamodule.transfer_batch_to_device(batch, torch.device("cpu"), 0)
    parts = datamodule.on_after_batch_transfer(batch, 0)
    torch.manual_seed(0)
    cfg_auto = compose_train(["experiment=st", "data.num_workers=0"])
    reference, _ = build_data_and_model(cfg_auto)
    reference.setup("fit")
    assert reference.finishes_in_workers()  # auto on a CPU-only run
    expected = next(iter(reference.train_dataloader()))
    assert set(parts) == set(expected) == {"spatial", "temporal"}
    for task in parts:
        assert parts[task].dtype == torch.float32
        assert torch.equal(parts[task], expected[task])


def test_masked_device_stage_trains_to_the_same_losses_through_the_trainer(
    compose_train: Callable[..., DictConfig], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPU's sync-free device stage (masked grayscale and channel choices), forced onto the
    CPU with data.device_stage=device, trains through trainer.fit to the same losses."""
    import csv

    from ssl_rl.run.training import train

    def losses(name: str) -> list[str]:
        cfg = compose_train(
            ["experiment=st", "data.device_stage=device", "trainer.max_steps=3"],
            output_dir=tmp_path / name,
        )
        assert train(cfg)["status"] == "completed"
        with open(tmp_path / name / "csv" / "metrics.csv") as handle:
            return [r["train/loss"] for r in csv.DictReader(handle) if r.get("train/loss")]

    host_reads = losses("host_reads")
    monkeypatch.setattr(two_stage, "FREE_READS", ())
    assert losses("masked") == host_reads and len(host_reads) == 3
