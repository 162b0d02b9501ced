"""Jigsaw tiles: geometry, normalisation, augmentation statistics, determinism, bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.pretext.image_parts_dataset import ImagePartsDataset, PathTable
from ssl_rl.data.pretext.jigsaw_transform import JigsawTransform
from ssl_rl.data.readers.image_folder import ImageFolderIndex
from tests.data.pretext.finished import finished, finished_batch
from tests.fixtures.images import (
    add_cmyk_jpeg,
    add_garbage_jpeg,
    add_grayscale_jpeg,
    add_png_named_jpeg,
    add_truncated_jpeg,
    make_image_folder,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Many tiny tensor ops: on a loaded 2-core machine one thread is several times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# A small geometry (cells of 16 px, tiles of 12 px) keeps the exhaustive checks cheap.
SMALL = {"grid": 3, "resize": 48, "crop": 48, "tile_crop": 12, "tile_size": 12}


def random_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)


def normalise(patch: torch.Tensor) -> torch.Tensor:
    """Reference per-channel normalisation of a float (..., C, h, w) patch."""
    mean = patch.mean(dim=(-2, -1), keepdim=True)
    return (patch - mean) / patch.std(dim=(-2, -1), keepdim=True)


def candidate_tiles(image: torch.Tensor, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every normalised tile × tile window of ``image`` (per channel), with its top-left corner."""
    windows = image.float().div(255).unfold(1, tile, 1).unfold(2, tile, 1)  # (3, Y, X, t, t)
    corners = torch.cartesian_prod(torch.arange(windows.shape[1]), torch.arange(windows.shape[2]))
    flat = windows.permute(1, 2, 0, 3, 4).reshape(-1, 3, tile, tile)
    return normalise(flat), corners


def locate(tiles: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Top-left corner (y, x) of the best-matching window of each tile and channel: (K, 3, 2)."""
    candidates, corners = candidate_tiles(image, tiles.shape[-1])
    distance = (tiles[:, None] - candidates[None]).pow(2).sum(dim=(-2, -1))  # (K, N, 3)
    return corners[distance.argmin(dim=1)]


# ------------------------------------------------------------------------------------ transform


@pytest.mark.parametrize(
    ("config", "shape"),
    [
        ({}, (9, 3, 64, 64)),  # paper: 256 / 255 / 64
        ({"resize": 128, "crop": 126, "tile_crop": 36, "tile_size": 36}, (9, 3, 36, 36)),
        ({"resize": 128, "crop": 126, "tile_crop": 36, "tile_size": 32}, (9, 3, 32, 32)),
        ({"grid": 2, "resize": 64, "crop": 64, "tile_crop": 28, "tile_size": 28}, (4, 3, 28, 28)),
    ],
)
def test_tile_shapes(config: dict, shape: tuple[int, ...]) -> None:
    transform = JigsawTransform(**config)
    for height, width in [(300, 400), (90, 60)]:  # downscale and upscale, both orientations
        tiles = transform(random_image(height, width), torch.Generator().manual_seed(0))
        assert tiles.shape == shape
        assert tiles.dtype == torch.float32
        assert torch.isfinite(tiles).all()


@pytest.mark.parametrize("train", [True, False])
def test_each_tile_channel_is_normalised(train: bool) -> None:
    transform = JigsawTransform(train=train)
    tiles = transform(random_image(320, 280), torch.Generator().manual_seed(1))
    mean = tiles.mean(dim=(-2, -1))
    std = tiles.std(dim=(-2, -1))
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-4)


def test_constant_image_gives_zero_tiles_not_nan() -> None:
    image = torch.full((3, 60, 60), 77, dtype=torch.uint8)
    tiles = JigsawTransform(**SMALL)(image, torch.Generator().manual_seed(0))
    assert tiles.abs().max() < 1e-6


def test_eval_tiles_are_the_centre_crops_of_the_centre_cells() -> None:
    transform = JigsawTransform(**{**SMALL, "resize": 56}, train=False)
    image = random_image(56, 60)  # no resize; crop 48 at (4, 6); cell 16, tile 12 at offset 2
    tiles = transform(image)
    for k in range(9):
        top, left = 4 + (k // 3) * 16 + 2, 6 + (k % 3) * 16 + 2
        patch = image[:, top : top + 12, left : left + 12].float().div(255)
        torch.testing.assert_close(tiles[k], normalise(patch), atol=1e-5, rtol=1e-5)


def test_train_tiles_come_from_their_own_cells_in_row_major_order() -> None:
    transform = JigsawTransform(**SMALL, gray_prob=0.0, channel_shift=0)
    image = random_image(48, 48, seed=3)  # equal to the crop: no resize, no crop offset
    offsets_seen = set()
    for seed in range(4):
        tiles = transform(image, torch.Generator().manual_seed(seed))
        corners = locate(tiles, image)  # (9, 3, 2)
        assert (corners == corners[:, :1]).all(), "without channel shift, channels move together"
        for k in range(9):
            y, x = corners[k, 0].tolist()
            cell_y, cell_x = k // 3 * 16, k % 3 * 16
            assert cell_y <= y <= cell_y + 4 and cell_x <= x <= cell_x + 4, (k, y, x)
            offsets_seen.add((y - cell_y, x - cell_x))
    assert len(offsets_seen) > 5, "tile crops inside the cells should be random"


def test_channel_shift_moves_channels_within_the_cell() -> None:
    transform = JigsawTransform(**SMALL, gray_prob=0.0, channel_shift=2)
    image = random_image(48, 48, seed=4)
    tiles = transform(image, torch.Generator().manual_seed(0))
    corners = locate(tiles, image)
    for k in range(9):
        cell = torch.tensor([k // 3 * 16, k % 3 * 16])
        assert ((corners[k] >= cell) & (corners[k] <= cell + 4)).all()
        spread = corners[k].max(dim=0).values - corners[k].min(dim=0).values
        assert (spread <= 4).all()
    assert (corners != corners[:, :1]).any(), "some channel should be shifted"


def test_grayscale_rate_is_about_gray_prob() -> None:
    transform = JigsawTransform(**SMALL, gray_prob=0.3, channel_shift=0)
    image = random_image(48, 48, seed=5)
    generator = torch.Generator().manual_seed(0)
    draws = 400
    gray = 0
    for _ in range(draws):
        tiles = transform(image, generator)
        gray += int(
            torch.allclose(tiles[:, 0], tiles[:, 1]) and torch.allclose(tiles[:, 1], tiles[:, 2])
        )
    assert 0.22 < gray / draws < 0.38  # binomial std 0.023


def test_grayscale_uses_luma_weights() -> None:
    red = torch.zeros((3, 48, 48), dtype=torch.uint8)
    red[0] = torch.randint(0, 256, (48, 48), generator=torch.Generator().manual_seed(0))
    transform = JigsawTransform(**SMALL, gray_prob=1.0, channel_shift=0)
    tiles = transform(red, torch.Generator().manual_seed(0))
    # Gray of a pure-red image is 0.299·R: after normalisation identical to R in every channel.
    reference = JigsawTransform(**SMALL, gray_prob=0.0, channel_shift=0)
    red_tiles = reference(red, torch.Generator().manual_seed(0))
    assert torch.allclose(tiles[:, 1], tiles[:, 0])
    assert (tiles[:, 0] - red_tiles[:, 0]).abs().max() < 0.05


def test_eval_mode_is_deterministic_and_has_no_colour_augmentation() -> None:
    transform = JigsawTransform(train=False)
    image = random_image(300, 340)
    first = transform(image, torch.Generator().manual_seed(0))
    assert torch.equal(first, transform(image, torch.Generator().manual_seed(1)))
    assert torch.equal(first, transform(image))
    assert not torch.allclose(first[:, 0], first[:, 1])


def test_train_mode_is_reproducible_from_the_generator_and_varies_between_calls() -> None:
    transform = JigsawTransform()
    image = random_image(300, 340)
    a = transform(image, torch.Generator().manual_seed(7))
    b = transform(image, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    generator = torch.Generator().manual_seed(7)
    draws = [transform(image, generator) for _ in range(3)]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"crop": 180}, "at least grid \\* tile_crop"),
        ({"tile_crop": 90}, "at least grid \\* tile_crop"),
        ({"resize": 200}, "resize \\(200\\) must be at least crop"),
        ({"gray_prob": 1.5}, "gray_prob"),
        ({"grid": 1}, "grid must be at least 2"),
        ({"tile_size": 0}, "positive"),
        ({"channel_shift": -1}, "channel_shift"),
    ],
)
def test_invalid_arguments_are_rejected(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JigsawTransform(**config)


def test_wrong_image_type_is_rejected() -> None:
    transform = JigsawTransform(**SMALL)
    with pytest.raises(ValueError, match="uint8"):
        transform(torch.rand(3, 60, 60))
    with pytest.raises(ValueError, match="uint8"):
        transform(torch.zeros(60, 60, 3, dtype=torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_transform_runs_on_the_images_device() -> None:
    image = random_image(300, 340)
    for train in (False, True):
        transform = JigsawTransform(train=train)
        on_gpu = transform(image.cuda(), torch.Generator().manual_seed(0))
        on_cpu = transform(image, torch.Generator().manual_seed(0))
        assert on_gpu.device.type == "cuda"
        torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=0.05, rtol=0)


# -------------------------------------------------------------------------------------- dataset


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "train", per_class=2, size=(72, 60))


def test_dataset_yields_tiles_for_every_imagenet_quirk(image_root: Path) -> None:
    add_cmyk_jpeg(image_root / "n01440764" / "n01440764_9.JPEG", size=(64, 64))
    add_grayscale_jpeg(image_root / "n01440764" / "n01440764_8.JPEG", size=(64, 64))
    add_png_named_jpeg(image_root / "n01443537" / "n01443537_9.JPEG", size=(64, 64))
    paths = ImageFolderIndex.scan(image_root).paths
    dataset = ImagePartsDataset(paths, JigsawTransform(**SMALL, train=False))
    assert len(dataset) == 9
    for i in range(len(dataset)):
        tiles = finished(dataset, i)
        assert tiles.shape == (9, 3, 12, 12)
        assert torch.isfinite(tiles).all()
    assert dataset.skipped_count == 0


def test_dataset_eval_mode_is_identical_across_calls_and_train_mode_is_not(
    image_root: Path,
) -> None:
    paths = ImageFolderIndex.scan(image_root).paths
    fixed = ImagePartsDataset(paths, JigsawTransform(**SMALL, train=False))
    assert torch.equal(finished(fixed, 0), finished(fixed, 0))
    assert torch.equal(finished(fixed, 0), finished(ImagePartsDataset(paths, fixed.transform), 0))
    augmented = ImagePartsDataset(paths, JigsawTransform(**SMALL))
    assert not torch.equal(finished(augmented, 0), finished(augmented, 0))


def test_train_draws_follow_the_global_seed_and_the_dataset_seed(image_root: Path) -> None:
    paths = ImageFolderIndex.scan(image_root).paths
    transform = JigsawTransform(**SMALL)
    dataset, other = (
        ImagePartsDataset(paths, transform, seed=1),
        ImagePartsDataset(paths, transform, seed=2),
    )
    torch.manual_seed(5)
    first = finished(dataset, 0)
    torch.manual_seed(5)
    assert torch.equal(finished(dataset, 0), first)
    torch.manual_seed(5)
    assert not torch.equal(finished(other, 0), first)


def test_eval_mode_leaves_the_global_rng_alone(image_root: Path) -> None:
    dataset = ImagePartsDataset(
        ImageFolderIndex.scan(image_root).paths, JigsawTransform(train=False)
    )
    state = torch.get_rng_state()
    finished(dataset, 0)
    assert torch.equal(torch.get_rng_state(), state)


def test_corrupt_file_is_skipped_counted_and_logged(
    image_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = add_truncated_jpeg(image_root / "n01440764" / "n01440764_1.JPEG")
    paths = ImageFolderIndex.scan(image_root).paths
    assert paths[1] == bad
    dataset = ImagePartsDataset(paths, JigsawTransform(**SMALL, train=False))
    with caplog.at_level(logging.WARNING, logger="ssl_rl.data.pretext.image_parts_dataset"):
        tiles = finished(dataset, 1)
    assert torch.equal(tiles, finished(dataset, 2))  # the next index stands in
    assert dataset.skipped_count == 1
    assert dataset.skipped_files == [bad]
    assert "1 corrupt file(s) skipped" in dataset.summary()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(bad) in warnings[0]


def test_last_index_wraps_around_to_the_first(image_root: Path) -> None:
    paths = ImageFolderIndex.scan(image_root).paths
    add_garbage_jpeg(paths[-1])
    dataset = ImagePartsDataset(paths, JigsawTransform(**SMALL, train=False))
    assert torch.equal(finished(dataset, len(dataset) - 1), finished(dataset, 0))


def test_many_consecutive_corrupt_files_raise(tmp_path: Path) -> None:
    paths = [add_garbage_jpeg(tmp_path / f"bad_{i}.JPEG") for i in range(4)]
    dataset = ImagePartsDataset(paths, JigsawTransform(**SMALL), max_consecutive_failures=3)
    with pytest.raises(DatasetError, match="looks broken") as info:
        finished(dataset, 0)
    assert str(paths[0]) in str(info.value)
    assert dataset.skipped_count == 4


def test_empty_sample_list_is_rejected() -> None:
    with pytest.raises(DatasetError, match="empty"):
        ImagePartsDataset([], JigsawTransform())


def test_workers_draw_different_augmentations_and_share_the_skip_count(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "train", classes=["n01"], per_class=1, size=(60, 60))
    image = root / "n01" / "n01_0.JPEG"
    bad = add_garbage_jpeg(root / "n01" / "bad.JPEG")
    dataset = ImagePartsDataset([image] * 4 + [bad], JigsawTransform(**SMALL))
    loader = DataLoader(dataset, batch_size=1, num_workers=2)
    batches = [finished_batch(dataset, batch)[0] for batch in loader]
    assert len(batches) == 5
    for i in range(len(batches)):
        for j in range(i):
            assert not torch.equal(batches[i], batches[j]), (i, j)
    assert dataset.skipped_count == 1


def test_path_table_round_trips_unusual_names() -> None:
    paths = [Path("/data/ä/b c/x!(1)&.JPEG"), Path("relative/n01_0.JPEG"), Path("/z")]
    table = PathTable(paths)
    assert len(table) == 3
    assert [table[i] for i in range(3)] == paths
    assert table[-1] == Path("/z")


def test_gray_luma_is_the_summed_luma_for_every_rgb_value():
    """The device stage's fixed-order luma equals the weighted sum (the CPU reference) exactly,
    including every value near .5, so its rounding is the same on any device."""
    from ssl_rl.data.pretext.jigsaw_transform import _LUMA, _luma

    values = torch.arange(256, dtype=torch.float32)
    r, g, b = torch.meshgrid(values, values, values, indexing="ij")
    colours = torch.stack([r.flatten(), g.flatten(), b.flatten()], dim=1)
    summed = (colours * torch.tensor(_LUMA)).sum(dim=1)
    assert torch.equal(_luma(colours, dim=1).round(), summed.round())
