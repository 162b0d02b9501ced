"""ImageFolder scanning and image decoding, on real-format files with ImageNet's quirks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.image_folder import CorruptImageError, ImageFolderIndex, load_rgb
from tests.fixtures.images import (
    DEFAULT_CLASSES,
    add_cmyk_jpeg,
    add_empty_class,
    add_garbage_jpeg,
    add_grayscale_jpeg,
    add_png_named_jpeg,
    add_truncated_jpeg,
    make_image_folder,
    png_pixels,
    random_photo,
)


def test_scan_lists_sorted_classes_and_samples(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "train", classes=["n02", "n01"], per_class=2)
    index = ImageFolderIndex.scan(root)
    assert index.classes == ["n01", "n02"]
    assert [(p.name, label) for p, label in index.samples] == [
        ("n01_0.JPEG", 0),
        ("n01_1.JPEG", 0),
        ("n02_0.JPEG", 1),
        ("n02_1.JPEG", 1),
    ]
    assert index.labels == [0, 0, 1, 1]
    assert all(p.parent.parent == root for p in index.paths)
    assert ImageFolderIndex.scan(root) == index


def test_scan_extensions_are_case_insensitive_and_other_files_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "n01"
    folder.mkdir()
    pixels = random_photo((16, 16), 0)
    for name in ["a.JPEG", "b.jpg", "c.Png", "d.BMP", "e.webp", "f.jpeg"]:
        Image.fromarray(pixels).save(folder / name, format=_pil_format(name))
    (folder / "notes.txt").write_text("not an image")
    (folder / "._a.JPEG").write_bytes(b"macOS resource fork")
    (folder / "sub").mkdir()
    (tmp_path / ".hidden_class").mkdir()
    index = ImageFolderIndex.scan(tmp_path)
    assert index.classes == ["n01"]
    assert [p.name for p in index.paths] == [
        "a.JPEG",
        "b.jpg",
        "c.Png",
        "d.BMP",
        "e.webp",
        "f.jpeg",
    ]


def _pil_format(name: str) -> str:
    suffix = name.rsplit(".", 1)[1].lower()
    return {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WEBP"}[suffix]


def test_missing_root_names_path_and_config_key(tmp_path: Path) -> None:
    missing = tmp_path / "imagenet" / "train"
    with pytest.raises(DatasetError) as info:
        ImageFolderIndex.scan(missing, config_key="data.spatial.root")
    message = str(info.value)
    assert str(missing) in message
    assert "does not exist" in message
    assert "data.spatial.root" in message


def test_root_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    file = tmp_path / "train.tar"
    file.write_bytes(b"tar")
    with pytest.raises(DatasetError, match="is not a directory"):
        ImageFolderIndex.scan(file, config_key="my.key")


def test_root_without_class_folders_is_rejected(tmp_path: Path) -> None:
    Image.fromarray(random_photo((16, 16), 0)).save(tmp_path / "loose.JPEG")
    with pytest.raises(DatasetError, match="no class sub-folders") as info:
        ImageFolderIndex.scan(tmp_path, config_key="data.spatial.root")
    assert "data.spatial.root" in str(info.value)


def test_root_one_level_too_high_is_rejected_with_a_hint(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "train")
    make_image_folder(tmp_path / "val")
    with pytest.raises(DatasetError, match="no images") as info:
        ImageFolderIndex.scan(tmp_path)
    assert str(tmp_path / "train") in str(info.value)


def test_empty_class_is_kept_with_a_warning_and_labels_stay_stable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    complete = ImageFolderIndex.scan(make_image_folder(tmp_path / "complete"))
    root = make_image_folder(tmp_path / "partial", classes=DEFAULT_CLASSES[::2])
    empty = add_empty_class(root, DEFAULT_CLASSES[1])
    with caplog.at_level(logging.WARNING, logger="ssl_rl.data.readers.image_folder"):
        index = ImageFolderIndex.scan(root)
    assert index.classes == complete.classes
    assert sorted(set(index.labels)) == [0, 2]
    assert [label for _, label in index.samples] == [0, 0, 2, 2]
    assert any(str(empty) in record.getMessage() for record in caplog.records)


def test_load_rgb_plain_jpeg(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path, classes=["n01"], per_class=1, size=(64, 48))
    image = load_rgb(root / "n01" / "n01_0.JPEG")
    assert image.shape == (3, 48, 64)
    assert image.dtype == torch.uint8
    assert image.is_contiguous() or image.permute(1, 2, 0).is_contiguous()


def test_load_rgb_cmyk_jpeg_gives_rgb(tmp_path: Path) -> None:
    image = load_rgb(add_cmyk_jpeg(tmp_path / "n01" / "cmyk.JPEG"))
    assert image.shape == (3, 30, 40)
    red, green, blue = image.float().mean(dim=(1, 2)).tolist()
    assert red > 240 and green < 15 and blue < 15


def test_load_rgb_grayscale_jpeg_gives_three_equal_channels(tmp_path: Path) -> None:
    image = load_rgb(add_grayscale_jpeg(tmp_path / "gray.JPEG"))
    assert image.shape == (3, 30, 40)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    assert image.float().std() > 5


def test_load_rgb_png_named_jpeg_keeps_exact_colours(tmp_path: Path) -> None:
    image = load_rgb(add_png_named_jpeg(tmp_path / "n02105855_2933.JPEG"))
    expected = torch.from_numpy(png_pixels()[..., :3]).permute(2, 0, 1)
    assert torch.equal(image, expected)


@pytest.mark.parametrize("make_bad", [add_truncated_jpeg, add_garbage_jpeg])
def test_load_rgb_undecodable_file_raises_corrupt_image_error(tmp_path: Path, make_bad) -> None:
    path = make_bad(tmp_path / "bad.JPEG")
    with pytest.raises(CorruptImageError) as info:
        load_rgb(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, DatasetError)


def test_load_rgb_missing_file_is_not_reported_as_corrupt(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found") as info:
        load_rgb(tmp_path / "gone.JPEG")
    assert not isinstance(info.value, CorruptImageError)


def test_load_rgb_min_size_decodes_large_jpegs_at_reduced_scale(tmp_path: Path) -> None:
    path = tmp_path / "big.JPEG"
    Image.fromarray(random_photo((400, 300), 5)).save(path, quality=90)
    full = load_rgb(path)
    reduced = load_rgb(path, min_size=100)
    assert full.shape == (3, 300, 400)
    assert reduced.shape == (3, 150, 200)  # 1/2 scale; 1/4 would give 75 < 100
    assert load_rgb(path, min_size=300).shape == (3, 300, 400)
    downsampled = full.float().reshape(3, 150, 2, 200, 2).mean(dim=(2, 4))
    assert (downsampled - reduced.float()).abs().mean() < 6


def test_load_rgb_min_size_ignores_non_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(random_photo((400, 300), 5)).save(path)
    assert load_rgb(path, min_size=100).shape == (3, 300, 400)
    assert np.array_equal(
        load_rgb(path, min_size=100).permute(1, 2, 0).numpy(), random_photo((400, 300), 5)
    )
