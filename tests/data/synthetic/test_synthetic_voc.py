"""The demo VOC generator: devkit format, agreement with its own lists, determinism, idempotence."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.voc07 import VOC_CLASSES, VOC07Index
from ssl_rl.data.readers.voc12_seg import VOC12SegIndex, load_label_map
from ssl_rl.data.synthetic.images import synthetic_classes
from ssl_rl.data.synthetic.voc import (
    COMPLETE_MARKER,
    DIFFICULT_FRACTION,
    IN_PROGRESS_MARKER,
    ensure_voc_dataset,
    equivalent_min_area,
    render_scene,
)

TINY = {"num_classes": 3, "trainval_images": 8, "test_images": 6, "image_size": (96, 72)}


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_voc_dataset(tmp_path_factory.mktemp("synthetic_voc") / "demo", **TINY)


def test_layout_is_the_devkit_format(voc: Path) -> None:
    assert voc.parts[-2:] == ("VOCdevkit", "VOC2007")
    main = voc / "ImageSets" / "Main"
    for split in ("train", "val", "trainval", "test"):
        assert (main / f"{split}.txt").is_file()
        assert all((main / f"{name}_{split}.txt").is_file() for name in VOC_CLASSES)
    assert len(list((voc / "JPEGImages").glob("*.jpg"))) == 14
    root = ET.parse(voc / "Annotations" / "000001.xml").getroot()
    assert [child.tag for child in root][:5] == [
        "folder",
        "filename",
        "source",
        "size",
        "segmented",
    ]
    obj = root.find("object")
    assert [child.tag for child in obj] == ["name", "pose", "truncated", "difficult", "bndbox"]
    assert (main / "aeroplane_test.txt").read_text().splitlines()[0][6:] in (" -1", "  1", "  0")


def test_parses_back_and_agrees_with_its_own_class_lists(voc: Path) -> None:
    splits = {split: VOC07Index(voc, split) for split in ("train", "val", "trainval", "test")}
    for index in splits.values():
        assert index.check_against_class_lists() == 20
    assert sorted(splits["train"].ids + splits["val"].ids) == splits["trainval"].ids
    assert not set(splits["trainval"].ids) & set(splits["test"].ids)
    assert len(splits["trainval"]) == 8 and len(splits["test"]) == 6
    assert sorted(splits["trainval"].ids + splits["test"].ids) == [f"{k:06d}" for k in range(1, 15)]


def test_objects_are_consistent_with_the_images(voc: Path) -> None:
    for split in ("trainval", "test"):
        index = VOC07Index(voc, split)
        for path, objects in zip(index.images, index.objects, strict=True):
            assert 1 <= len(objects) <= 3
            with Image.open(path) as image:
                assert image.size == (96, 72)
            for obj in objects:
                xmin, ymin, xmax, ymax = obj.box
                assert 1 <= xmin <= xmax <= 96 and 1 <= ymin <= ymax <= 72
                assert obj.label < 3, "only the first num_classes VOC classes occur"
                assert obj.difficult == (obj.area < DIFFICULT_FRACTION * 96 * 72)
                if obj.truncated:
                    assert xmin == 1 or ymin == 1 or xmax == 96 or ymax == 72
        assert torch.all(index.targets()[:, 3:] == -1)


def test_targets_have_present_absent_and_difficult_only_entries(tmp_path: Path) -> None:
    voc = ensure_voc_dataset(tmp_path, num_classes=4, trainval_images=30, test_images=2)
    targets = VOC07Index(voc, "trainval").targets()
    assert {-1, 0, 1} == set(targets.unique().tolist())
    assert torch.all((targets[:, :4] == 1).sum(0) > 0), "every used class has positives"


def test_objects_carry_their_class_appearance() -> None:
    """The box holds the object: its pixels differ from the pixels just outside it."""
    classes = synthetic_classes(10)
    inside, outside = [], []
    for k in range(12):
        image, objects, _ = render_scene(classes, (192, 144), np.random.default_rng(k), k)
        pixels = np.asarray(image, dtype=np.float32)
        for obj in objects:
            x0, y0, x1, y1 = obj.box
            if obj.difficult or obj.truncated:
                continue
            box = pixels[y0 - 1 : y1, x0 - 1 : x1]
            above = pixels[max(y0 - 7, 0) : y0 - 1, x0 - 1 : x1].reshape(-1, 3)
            if len(above) > 0:
                inside.append(box.std(axis=(0, 1)).mean())
                outside.append(above.std(axis=0).mean())
    assert len(inside) >= 8
    # Patterned objects are much busier than the smooth background around them.
    assert np.mean(inside) > 2 * np.mean(outside)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path: Path) -> None:
    a = digest(ensure_voc_dataset(tmp_path / "a", **TINY, seed=5))
    b = digest(ensure_voc_dataset(tmp_path / "b", **TINY, seed=5))
    c = digest(ensure_voc_dataset(tmp_path / "c", **TINY, seed=6))
    assert a == b
    images = [name for name in a if name.endswith(".jpg")]
    assert all(a[name] != c.get(name) for name in images)


def test_ensure_is_idempotent_and_regenerates_on_new_parameters(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    voc = ensure_voc_dataset(root, **TINY)
    assert (root / COMPLETE_MARKER).is_file() and not (root / IN_PROGRESS_MARKER).exists()
    victim = voc / "JPEGImages" / "000001.jpg"
    victim.unlink()
    assert ensure_voc_dataset(root, **TINY) == voc
    assert not victim.exists(), "a complete dataset must not be regenerated"
    ensure_voc_dataset(root, **{**TINY, "test_images": 3})
    assert victim.exists()
    assert len(VOC07Index(voc, "test")) == 3
    (root / COMPLETE_MARKER).unlink()  # as after an interrupted run
    (root / IN_PROGRESS_MARKER).touch()
    ensure_voc_dataset(root, **{**TINY, "test_images": 3})
    assert (root / COMPLETE_MARKER).is_file()


def test_a_dataset_of_an_older_generator_version_is_regenerated(tmp_path: Path) -> None:
    voc = ensure_voc_dataset(tmp_path, **TINY)
    marker = json.loads((tmp_path / COMPLETE_MARKER).read_text())
    marker["version"] -= 1
    (tmp_path / COMPLETE_MARKER).write_text(json.dumps(marker))
    victim = voc / "JPEGImages" / "000001.jpg"
    victim.unlink()
    ensure_voc_dataset(tmp_path, **TINY)
    assert victim.is_file()


def test_every_used_class_occurs_about_equally_often(tmp_path: Path) -> None:
    voc = ensure_voc_dataset(tmp_path, num_classes=5, trainval_images=20, test_images=20)
    for split in ("trainval", "test"):
        labels = [obj.label for objects in VOC07Index(voc, split).objects for obj in objects]
        counts = np.bincount(labels, minlength=5)
        assert counts.min() >= 4 and counts.max() <= 3 * counts.min(), counts


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match="not written by the synthetic VOC generator"):
        ensure_voc_dataset(tmp_path / "photos", **TINY)
    assert (tmp_path / "photos" / "holiday.jpg").exists()


def test_equivalent_min_area_scales_the_paper_threshold() -> None:
    assert equivalent_min_area((500, 375)) == 10_000
    assert equivalent_min_area((192, 144)) == 1_475
    with pytest.raises(ValueError, match="num_classes"):
        ensure_voc_dataset(Path("unused"), num_classes=21)


def test_segmentation_label_maps_are_voc2012_style(voc: Path) -> None:
    seg = voc.parent / "VOC2012"
    train, val = VOC12SegIndex(seg, "train"), VOC12SegIndex(seg, "val")
    assert train.ids == VOC07Index(voc, "trainval").ids
    assert val.ids == VOC07Index(voc, "test").ids
    with Image.open(train.label_maps[0]) as png:
        assert png.mode == "P" and png.getpalette()[3:6] == [128, 0, 0]  # devkit colour of 1
    seen_void = False
    for image_id, path in zip(val.ids, val.label_maps, strict=True):
        labels = load_label_map(path)
        objects = VOC07Index(voc, "test").objects[val.ids.index(image_id)]
        assert labels.shape == (72, 96)
        seen_void |= bool((labels == 255).any())
        present = set(labels.unique().tolist()) - {0, 255}
        assert present <= {obj.label + 1 for obj in objects}
        for obj in objects:
            x0, y0, x1, y1 = obj.box
            inside = labels[y0 - 1 : y1, x0 - 1 : x1]
            if obj.difficult:
                assert (inside == 255).any()
            else:
                assert (inside == obj.label + 1).sum() > 0.2 * inside.numel() or obj.truncated
    assert seen_void
