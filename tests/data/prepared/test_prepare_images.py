"""prepare_images: a pre-resized ImageFolder mirror, and ImageFolderSplits reading it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.prepare_images import main, prepare_images
from ssl_rl.data.prepared.manifest import read_manifest
from ssl_rl.data.readers.image_folder import ImageFolderIndex, ImageFolderSplits, load_rgb
from tests.fixtures.images import (
    add_cmyk_jpeg,
    add_empty_class,
    add_garbage_jpeg,
    add_png_named_jpeg,
    make_image_folder,
    random_photo,
)


def _imagenet_like(root: Path) -> Path:
    """3 classes of 64x48 JPEGs, a large one, CMYK, PNG-named-.JPEG, garbage, an empty class."""
    make_image_folder(root, per_class=2, size=(64, 48))
    Image.fromarray(random_photo((100, 80), 7)).save(root / "n01440764" / "big.JPEG", quality=95)
    add_cmyk_jpeg(root / "n01443537" / "n01443537_cmyk.JPEG", size=(80, 60))
    add_png_named_jpeg(root / "n01484850" / "n01484850_png.JPEG", size=(60, 60))
    add_garbage_jpeg(root / "n01484850" / "n01484850_bad.JPEG")
    add_empty_class(root, "n09999999")
    return root


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _imagenet_like(tmp_path_factory.mktemp("imagenet") / "train")


@pytest.fixture(scope="module")
def mirror(src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("mirror") / "train"
    prepare_images(src, dst, short_side=40, workers=2, progress=False)
    return dst


def test_mirror_keeps_the_class_layout_and_lists_the_corrupt_image(src: Path, mirror: Path) -> None:
    original, copy = ImageFolderIndex.scan(src), ImageFolderIndex.scan(mirror)
    assert copy.classes == original.classes  # the empty class too: labels stay aligned
    bad = src / "n01484850" / "n01484850_bad.JPEG"
    expected = [(p.relative_to(src), y) for p, y in original.samples if p != bad]
    assert [(p.relative_to(mirror), y) for p, y in copy.samples] == expected
    manifest = read_manifest(mirror)
    assert manifest is not None and manifest.complete
    assert (manifest.kind, manifest.files, manifest.source) == ("images", 9, str(src.resolve()))
    assert manifest.settings == {"short_side": 40, "quality": 90, "flat": False}
    assert [item["file"] for item in manifest.skipped] == [str(bad)]
    assert "Cannot decode" in manifest.skipped[0]["reason"]
    assert manifest.bytes == sum(p.stat().st_size for p, _ in copy.samples)
    assert "python -m ssl_rl.data.prepare_images" in manifest.command


def test_resized_like_the_jigsaw(src: Path, mirror: Path, tmp_path: Path) -> None:
    big = load_rgb(mirror / "n01440764" / "big.JPEG")
    assert big.shape == (3, 40, 50)  # torchvision: long side int(40 * 100 / 80)
    # The jigsaw's first step on the original, then the same JPEG encoding: the same pixels.
    train_time = TF.resize(load_rgb(src / "n01440764" / "big.JPEG", min_size=40), [40])
    encoded = tmp_path / "encoded.jpg"
    Image.fromarray(train_time.permute(1, 2, 0).numpy()).save(encoded, "JPEG", quality=90)
    assert torch.equal(big, load_rgb(encoded))
    assert load_rgb(mirror / "n01440764" / "n01440764_0.JPEG").shape == (3, 40, 53)
    # 60x60 PNG named .JPEG: resized and re-encoded as a real JPEG.
    png = mirror / "n01484850" / "n01484850_png.JPEG"
    assert Image.open(png).format == "JPEG" and load_rgb(png).shape == (3, 40, 40)


def test_images_at_most_the_short_side_are_copied_byte_for_byte(src: Path, tmp_path: Path) -> None:
    prepare_images(src, tmp_path, short_side=48, workers=1, progress=False)
    same = "n01440764/n01440764_1.JPEG"
    assert (tmp_path / same).read_bytes() == (src / same).read_bytes()
    assert load_rgb(tmp_path / "n01440764" / "big.JPEG").shape == (3, 48, 60)


def test_flat_folder_is_mirrored_flat(tmp_path: Path) -> None:
    val = tmp_path / "val"
    val.mkdir()
    for k in range(3):
        Image.fromarray(random_photo((64, 48), k)).save(val / f"ILSVRC2012_val_{k:08d}.JPEG")
    stats = prepare_images(val, tmp_path / "val256", short_side=24, progress=False)
    assert (stats.written, stats.files) == (3, 3)
    assert sorted(p.name for p in (tmp_path / "val256").glob("*.JPEG")) == sorted(
        p.name for p in val.iterdir()
    )
    assert read_manifest(tmp_path / "val256").settings["flat"] is True  # type: ignore[union-attr]
    assert "--flat" in read_manifest(tmp_path / "val256").command  # type: ignore[union-attr]


def test_resume_skips_finished_images_and_redoes_partial_ones(src: Path, tmp_path: Path) -> None:
    prepare_images(src, tmp_path, short_side=40, workers=1, progress=False)
    finished = sorted(tmp_path.glob("*/*.JPEG"))
    redo = finished.pop(0)
    redo.unlink()
    partial = redo.with_name(redo.name + ".partial")
    partial.write_bytes(b"\xff\xd8 half")
    mtimes = {path: path.stat().st_mtime_ns for path in finished}
    stats = prepare_images(src, tmp_path, short_side=40, workers=2, progress=False)
    assert (stats.already_done, stats.written, len(stats.skipped)) == (8, 1, 1)
    assert {path: path.stat().st_mtime_ns for path in finished} == mtimes
    assert redo.is_file() and not partial.exists()
    assert load_rgb(redo).shape[1] == 40


def test_cli_exit_codes(src: Path, tmp_path: Path, capsys) -> None:
    argv = ["--src", str(src), "--dst", str(tmp_path), "--short-side", "32", "--no-progress"]
    assert main([*argv, "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.err and "n01484850_bad.JPEG" in captured.err
    assert main(["--src", str(src), "--dst", str(tmp_path), "--no-progress"]) == 2
    assert "another preparation" in capsys.readouterr().err
    assert main(["--src", str(src), "--dst", str(src / "inside"), "--no-progress"]) == 2


# ------------------------------------------------------------- ImageFolderSplits + mirrors


def _splits(src: Path, mirror: Path | str, short_side: int | None = 40) -> ImageFolderSplits:
    return ImageFolderSplits(
        train_root=str(src),
        val_root=str(src),
        prepared_train_root=str(mirror),
        required_short_side=short_side,
    )


def test_splits_read_the_mirror_when_it_matches(src: Path, mirror: Path) -> None:
    train, val = _splits(src, mirror).samples("tasks.spatial.reader")
    assert all(mirror in path.parents for path in train) and len(train) == 9
    assert all(src in path.parents for path in val) and len(val) == 10


def test_missing_mirror_falls_back_with_the_command(src: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO):
        train, _ = _splits(src, tmp_path / "absent", 256).samples("tasks.spatial.reader")
    assert all(src in path.parents for path in train)
    assert "tasks.spatial.reader.prepared_train_root" in caplog.text
    assert "python -m ssl_rl.data.prepare_images --src" in caplog.text
    assert "--short-side 256" in caplog.text


def test_mismatched_mirror_is_refused(src: Path, mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as error:
        _splits(src, mirror, short_side=256).samples("tasks.spatial.reader")
    message = str(error.value)
    assert "tasks.spatial.reader.prepared_train_root" in message and str(mirror) in message
    assert "short_side is 40 but 256 is required" in message
    assert "python -m ssl_rl.data.prepare_images" in message and "--short-side 256" in message
    other = _imagenet_like(tmp_path / "other")
    with pytest.raises(DatasetError, match=r"made from .*train, not from .*other"):
        _splits(other, mirror).samples("k")


def test_unfinished_or_old_mirror_is_refused(src: Path, mirror: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    data = json.loads((mirror / "prepared.json").read_text())
    (copy / "prepared.json").write_text(json.dumps({**data, "complete": False}))
    with pytest.raises(DatasetError, match=r"incomplete.*prepare_images"):
        _splits(src, copy).samples("k")
    (copy / "prepared.json").write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(DatasetError, match="format version 99"):
        _splits(src, copy).samples("k")
    (copy / "prepared.json").unlink()
    with pytest.raises(DatasetError, match=r"no prepared\.json.*prepare_images"):
        _splits(src, copy).samples("k")
