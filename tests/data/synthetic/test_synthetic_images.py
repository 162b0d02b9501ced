"""The offline demo image dataset: format, determinism, idempotence, content sanity."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.image_folder import ImageFolderIndex, load_rgb
from ssl_rl.data.synthetic.images import (
    COMPLETE_MARKER,
    IN_PROGRESS_MARKER,
    SHAPES,
    _shape_mask,
    ensure_image_dataset,
    render_image,
    render_instance,
    synthetic_classes,
)

TINY = {"num_classes": 2, "train_per_class": 2, "val_per_class": 1, "image_size": 48}


def digest(root: Path) -> dict[str, str]:
    """Relative path → sha1 of every file under root."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_is_imagenet_image_folder(tmp_path: Path) -> None:
    root = ensure_image_dataset(tmp_path / "demo", **TINY, progress=False)
    assert sorted(digest(root)) == [
        COMPLETE_MARKER,
        "classes.txt",
        "train/n90000001/n90000001_0.JPEG",
        "train/n90000001/n90000001_1.JPEG",
        "train/n90000002/n90000002_0.JPEG",
        "train/n90000002/n90000002_1.JPEG",
        "val/n90000001/ILSVRC2012_val_00000001.JPEG",
        "val/n90000002/ILSVRC2012_val_00000002.JPEG",
    ]
    assert (root / "classes.txt").read_text().splitlines() == [
        "n90000001 house",
        "n90000002 lollipop",
    ]
    train = ImageFolderIndex.scan(root / "train")
    assert train.classes == ["n90000001", "n90000002"]
    assert train.labels == [0, 0, 1, 1]
    with Image.open(train.paths[0]) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (48, 48))
    assert load_rgb(train.paths[0]).shape == (3, 48, 48)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path: Path) -> None:
    a = digest(ensure_image_dataset(tmp_path / "a", **TINY, seed=3, progress=False))
    b = digest(ensure_image_dataset(tmp_path / "b", **TINY, seed=3, progress=False))
    c = digest(ensure_image_dataset(tmp_path / "c", **TINY, seed=4, progress=False))
    assert a == b
    images = [name for name in a if name.endswith(".JPEG")]
    assert all(a[name] != c[name] for name in images)
    assert len({a[name] for name in images}) == len(images), "every image differs"


def test_ensure_returns_a_complete_dataset_without_touching_it(tmp_path: Path) -> None:
    root = ensure_image_dataset(tmp_path / "demo", **TINY, progress=False)
    victim = root / "train" / "n90000001" / "n90000001_0.JPEG"
    victim.unlink()
    assert ensure_image_dataset(root, **TINY, progress=False) == root
    assert not victim.exists(), "a complete dataset must not be regenerated"


def test_interrupted_run_is_regenerated(tmp_path: Path) -> None:
    root = ensure_image_dataset(tmp_path / "demo", **TINY, progress=False)
    expected = digest(root)
    # An interrupted run: marker never written, a partial file left behind.
    (root / COMPLETE_MARKER).unlink()
    (root / IN_PROGRESS_MARKER).touch()
    (root / "train" / "n90000001" / "n90000001_1.JPEG").write_bytes(b"\xff\xd8half")
    (root / "train" / "n90000001" / "n90000001_7.JPEG").write_bytes(b"stale")
    ensure_image_dataset(root, **TINY, progress=False)
    assert digest(root) == expected
    assert not (root / IN_PROGRESS_MARKER).exists()


def test_other_parameters_regenerate(tmp_path: Path) -> None:
    root = ensure_image_dataset(tmp_path / "demo", **TINY, progress=False)
    fewer = {**TINY, "train_per_class": 1}
    ensure_image_dataset(root, **fewer, progress=False)
    assert len(ImageFolderIndex.scan(root / "train").samples) == 2
    expected = digest(ensure_image_dataset(tmp_path / "fresh", **fewer, progress=False))
    assert digest(root) == expected


def test_a_dataset_of_an_older_generator_version_is_regenerated(tmp_path: Path) -> None:
    root = ensure_image_dataset(tmp_path / "demo", **TINY, progress=False)
    marker = json.loads((root / COMPLETE_MARKER).read_text())
    marker["version"] -= 1  # e.g. version 1, whose classes were shape + pattern pairs
    (root / COMPLETE_MARKER).write_text(json.dumps(marker))
    victim = root / "train" / "n90000001" / "n90000001_0.JPEG"
    victim.unlink()
    ensure_image_dataset(root, **TINY, progress=False)
    assert victim.is_file()
    assert json.loads((root / COMPLETE_MARKER).read_text())["version"] == marker["version"] + 1


def test_refuses_to_write_into_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "imagenet" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="not written by the synthetic image generator"):
        ensure_image_dataset(tmp_path / "imagenet", **TINY, progress=False)
    assert (tmp_path / "imagenet" / "train").is_dir()


def test_invalid_parameters_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        ensure_image_dataset(tmp_path / "x", num_classes=0)
    with pytest.raises(ValueError, match="train_per_class"):
        ensure_image_dataset(tmp_path / "x", train_per_class=0)
    assert not (tmp_path / "x").exists()


def test_classes_are_distinct_outlines_for_every_voc_class() -> None:
    classes = synthetic_classes(len(SHAPES))
    assert len(classes) >= 20  # the VOC-format set draws VOC class i as class i
    assert [c.shape for c in classes] == list(SHAPES)
    assert len({c.wnid for c in classes}) == len(classes)
    with pytest.raises(ValueError, match="num_classes"):
        synthetic_classes(len(SHAPES) + 1)


def test_every_class_has_its_share_of_images(tmp_path: Path) -> None:
    root = ensure_image_dataset(tmp_path / "demo", **{**TINY, "num_classes": 3}, progress=False)
    for split, count in (("train", 2), ("val", 1)):
        labels = ImageFolderIndex.scan(root / split).labels
        assert np.bincount(labels).tolist() == [count] * 3


def test_colour_and_pattern_vary_within_a_class_and_colour_does_not_tell_it() -> None:
    rows = []
    for label, cls in enumerate(synthetic_classes(10)):
        drawn = [render_instance(cls, 48, np.random.default_rng([label, k])) for k in range(12)]
        assert len({d.pattern for d in drawn}) >= 5, cls.name
        colours = []
        for d in drawn:
            pixels = np.asarray(d.image, dtype=np.float32)
            inside = d.alpha > 0.5
            colours.append(np.concatenate([pixels[inside].mean(0), pixels[~inside].mean(0)]))
        assert np.ptp(np.array(colours)[:, :3], axis=0).max() > 100, cls.name
        rows += [(label, c) for c in colours]
    # Leave-one-out nearest neighbour on the object's and the background's mean colour.
    labels = np.array([label for label, _ in rows])
    features = np.array([c for _, c in rows])
    distances = np.linalg.norm(features[:, None] - features[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    accuracy = (labels[distances.argmin(axis=1)] == labels).mean()
    assert accuracy < 0.3, accuracy


def test_every_jigsaw_cell_has_content_beyond_pixel_noise() -> None:
    """Per-tile normalisation needs structure in every tile; flat tiles would carry no signal."""
    for i, cls in enumerate(synthetic_classes(10)):
        image = render_image(cls, 128, np.random.default_rng(i))
        smooth = np.asarray(image.filter(ImageFilter.BoxBlur(2)), dtype=np.float32)  # no noise
        cells = smooth[1:127, 1:127].reshape(3, 42, 3, 42, 3).transpose(0, 2, 1, 3, 4)
        assert (cells.reshape(9, -1).std(axis=1) > 2).all(), cls.name


@pytest.mark.parametrize("angle", [-25.0, 0.0, 25.0])
def test_objects_span_several_cells_and_shapes_differ(angle: float) -> None:
    """At the smallest size drawn, every shape still spans ≥ 2 of the 3 jigsaw cells per axis."""
    masks = {}
    for shape in SHAPES:
        # radius 0.34 and stretch 0.88 are the lower limits render_image draws from
        image = _shape_mask(shape, 128, np.array([0.5, 0.5]), 0.34, math.radians(angle), 0.88)
        mask = np.asarray(image) > 127
        rows, cols = np.nonzero(mask)
        assert rows.max() - rows.min() > 128 / 3 and cols.max() - cols.min() > 128 / 3, shape
        masks[shape] = mask
    for a in SHAPES:
        for b in SHAPES:
            if a < b:
                iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
                assert iou < 0.93, (a, b, iou)  # circle vs hexagon is the closest pair


@pytest.mark.slow
def test_worker_processes_write_the_same_files(tmp_path: Path) -> None:
    one = digest(ensure_image_dataset(tmp_path / "one", **TINY, progress=False))
    two = digest(ensure_image_dataset(tmp_path / "two", **TINY, progress=False, workers=2))
    assert one == two
