"""Procedural stand-in for Pascal VOC 2007, written in the real devkit format.

Layout (what :class:`~ssl_rl.data.readers.voc07.VOC07Index` reads)::

    root/VOCdevkit/VOC2007/JPEGImages/<id>.jpg
    root/VOCdevkit/VOC2007/Annotations/<id>.xml     folder/filename/source/size/segmented/object*
    root/VOCdevkit/VOC2007/ImageSets/Main/{train,val,trainval,test}.txt
    root/VOCdevkit/VOC2007/ImageSets/Main/<cls>_<split>.txt    "<id> <1|-1|0>" for all 20 classes
    root/VOCdevkit/VOC2012/JPEGImages/<id>.jpg                 the same images (hard links)
    root/VOCdevkit/VOC2012/SegmentationClass/<id>.png          palette PNG of class indices
    root/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt

The VOC 2012-style label maps (what :class:`~ssl_rl.data.readers.voc12_seg.VOC12SegIndex`
reads) mark each object's pixels with its class index + 1 (0 is background), a band of
:data:`VOID_BAND` pixels along every object outline and every difficult object with 255
("void"), as the release does. Segmentation train is the VOC2007 trainval images, val the test
images.

Every image holds 1–3 objects of the demo's procedural classes (an outline: one shape, or
parts in a layout; colour and surface pattern drawn per object; from
:mod:`ssl_rl.data.synthetic.images`), VOC class ``i`` drawn as procedural class ``i``. Only the
first ``num_classes`` VOC classes occur, so the others have no positives (an edge case the
metric code must handle). Boxes are the tight boxes of the drawn shapes, clipped to the image;
objects reaching over the border are ``truncated``, objects whose visible box covers less than
:data:`DIFFICULT_FRACTION` of the image are ``difficult``. Ids are numbered like VOC's, with
trainval and test interleaved.

The paper's 10,000-pixel minimum crop (on ~500×375 photos) removes nearly every object of
these small images; :func:`equivalent_min_area` gives the same fraction of the image instead,
the demo's stand-in.

Each image is drawn from its own RNG seeded by (seed, image number). A completion marker with
the parameters is written last; a folder without it or with other parameters is regenerated.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ssl_rl.data.readers.voc07 import PAPER_MIN_CROP_AREA, VOC_CLASSES, Box, box_area
from ssl_rl.data.synthetic.images import (
    _SUPERSAMPLE,
    SyntheticClass,
    _background,
    _downsample,
    _draw_distractors,
    _shape_mask,
    _unit_grid,
    object_surface,
    synthetic_classes,
)
from ssl_rl.data.synthetic.linking import link_or_copy
from ssl_rl.data.synthetic.markers import holds_earlier_dataset, read_marker

logger = logging.getLogger(__name__)

COMPLETE_MARKER = ".synthetic_voc_complete.json"
IN_PROGRESS_MARKER = ".synthetic_voc_in_progress"
DIFFICULT_FRACTION = 0.02  # visible box under 2 % of the image: "difficult"
SMALL_OBJECT_PROBABILITY = 0.2
PAPER_IMAGE_AREA = 500 * 375  # the typical VOC photo
# 2: the image classes are outlines only (colour and pattern drawn per object).
# 3: the still images' calm background; no drop shadows.
# 4: VOC 2012-style segmentation label maps.
_FORMAT_VERSION = 4
VOID = 255
VOID_BAND = 1  # pixels on each side of an outline marked void
_JPEG_QUALITY = 90
_RADIUS = 0.25  # shape radius in patch units: every shape (incl. the wide ellipse) fits the patch
_MAX_OVERLAP = 0.35  # IoU allowed between the boxes of one image


def equivalent_min_area(
    image_size: tuple[int, int], paper_min_area: int = PAPER_MIN_CROP_AREA
) -> int:
    """The NN protocol's minimum crop area scaled from a 500×375 photo to ``image_size``."""
    width, height = image_size
    return round(paper_min_area * width * height / PAPER_IMAGE_AREA)


@dataclass(frozen=True)
class _Spec:
    """Everything that determines the dataset's content (stored in the completion marker)."""

    num_classes: int
    trainval_images: int
    test_images: int
    image_size: tuple[int, int]
    seed: int
    version: int = _FORMAT_VERSION

    def __post_init__(self) -> None:
        if not 1 <= self.num_classes <= len(VOC_CLASSES):
            raise ValueError(f"num_classes must be in [1, 20], got {self.num_classes}")
        if self.trainval_images < 2 or self.test_images < 1:
            raise ValueError(
                f"need trainval_images >= 2 (train and val) and test_images >= 1, "
                f"got {self.trainval_images}, {self.test_images}"
            )
        if min(self.image_size) < 48:
            raise ValueError(f"image_size must be at least 48x48, got {self.image_size}")


@dataclass(frozen=True)
class _DrawnObject:
    label: int
    box: Box
    truncated: bool
    difficult: bool


def ensure_voc_dataset(
    root: Path | str,
    num_classes: int = 10,
    trainval_images: int = 100,
    test_images: int = 100,
    image_size: tuple[int, int] = (192, 144),
    seed: int = 0,
) -> Path:
    """Return ``root/VOCdevkit/VOC2007``, writing the dataset under ``root`` (replacing an
    earlier synthetic one) unless it is complete with these parameters."""
    root = Path(root)
    # (*image_size,) is tuple(image_size) (a config may pass a list), typed as a pair.
    spec = _Spec(num_classes, trainval_images, test_images, (*image_size,), seed)
    if read_marker(root / COMPLETE_MARKER) == json.loads(json.dumps(asdict(spec))):
        return voc_folder(root)
    return _generate(root, spec)


def voc_folder(root: Path | str) -> Path:
    """The ``VOC2007`` folder of a dataset generated under ``root``."""
    return Path(root) / "VOCdevkit" / "VOC2007"


def _generate(root: Path, spec: _Spec) -> Path:
    """Write the dataset of ``spec`` under ``root``; return its VOC2007 folder."""
    _prepare_root(root)
    (root / IN_PROGRESS_MARKER).touch()
    voc = voc_folder(root)
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    classes = synthetic_classes(spec.num_classes)
    splits = _assign_splits(spec)
    seg = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (seg / folder).mkdir(parents=True, exist_ok=True)
    flags = {}
    for number, image_id in enumerate(splits["trainval"] + splits["test"]):
        rng = np.random.default_rng([spec.seed, number])
        image, objects, labels = render_scene(classes, spec.image_size, rng, first_label=number)
        jpeg = voc / "JPEGImages" / f"{image_id}.jpg"
        image.save(jpeg, format="JPEG", quality=_JPEG_QUALITY)
        _write_annotation(voc / "Annotations" / f"{image_id}.xml", image_id, image, objects)
        flags[image_id] = _class_flags(objects)
        link_or_copy(jpeg, seg / "JPEGImages" / jpeg.name)
        _write_label_map(seg / "SegmentationClass" / f"{image_id}.png", labels)
    segmentation_splits = {
        "train": splits["trainval"],
        "val": splits["test"],
        "trainval": splits["trainval"] + splits["test"],
    }
    for split, ids in segmentation_splits.items():
        (seg / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(
            "".join(f"{i}\n" for i in ids)
        )
    main = voc / "ImageSets" / "Main"
    for split, ids in splits.items():
        (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for label, name in enumerate(VOC_CLASSES):
            lines = "".join(f"{i} {flags[i][label]:2d}\n" for i in ids)
            (main / f"{name}_{split}.txt").write_text(lines)
    (root / COMPLETE_MARKER).write_text(json.dumps(asdict(spec), indent=1))
    (root / IN_PROGRESS_MARKER).unlink()
    return voc


def _assign_splits(spec: _Spec) -> dict[str, list[str]]:
    """Ids 000001.. with test images interleaved at random; trainval halved into train/val."""
    total = spec.trainval_images + spec.test_images
    rng = np.random.default_rng([spec.seed, 1_000_003])
    is_test = np.zeros(total, dtype=bool)
    is_test[rng.choice(total, spec.test_images, replace=False)] = True
    ids = [f"{k + 1:06d}" for k in range(total)]
    trainval = [i for i, test in zip(ids, is_test, strict=True) if not test]
    test = [i for i, test in zip(ids, is_test, strict=True) if test]
    is_val = np.zeros(len(trainval), dtype=bool)
    is_val[rng.choice(len(trainval), len(trainval) // 2, replace=False)] = True
    train = [i for i, val in zip(trainval, is_val, strict=True) if not val]
    val = [i for i, val in zip(trainval, is_val, strict=True) if val]
    return {"train": train, "val": val, "trainval": trainval, "test": test}


def _class_flags(objects: list[_DrawnObject]) -> list[int]:
    flags = [-1] * len(VOC_CLASSES)
    for obj in objects:
        flags[obj.label] = max(flags[obj.label], 0 if obj.difficult else 1)
    return flags


# ---------------------------------------------------------------------------------------------
# Rendering: a square canvas of side max(W, H) (the synthetic_images helpers are square), objects
# drawn on square patches and pasted, the canvas cropped to W × H at the end.
# ---------------------------------------------------------------------------------------------


def render_scene(
    classes: list[SyntheticClass],
    image_size: tuple[int, int],
    rng: np.random.Generator,
    first_label: int = 0,
) -> tuple[Image.Image, list[_DrawnObject], np.ndarray]:
    """One RGB image of 1–3 objects, their annotations (first object's class cycles) and the
    uint8 (H, W) label map (0 background, label + 1 an object, 255 void)."""
    width, height = image_size
    side = max(width, height)
    canvas = _background(*_unit_grid(side), rng)
    _draw_distractors(canvas, side, rng)
    labels = np.zeros((side, side), dtype=np.uint8)
    objects: list[_DrawnObject] = []
    for k in range(int(rng.integers(1, 4))):
        label = first_label % len(classes) if k == 0 else int(rng.integers(len(classes)))
        for _ in range(20):  # avoid heavy overlap; drop the object if there is no room
            placed = _place_object(classes[label], label, image_size, rng)
            if placed is not None and all(
                _iou(placed.annotation.box, other.box) <= _MAX_OVERLAP for other in objects
            ):
                _paint(canvas, classes[label], placed, rng)
                _label_object(labels, placed)
                objects.append(placed.annotation)
                break
    canvas += rng.normal(0.0, 2.5, size=canvas.shape).astype(np.float32)
    pixels = np.clip(canvas[:height, :width] + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB"), objects, labels[:height, :width].copy()


def _label_object(labels: np.ndarray, placed: _PlacedObject) -> None:
    """Paint the object into the label map: its class + 1 inside, void on a band along the
    outline, void entirely if difficult (the VOC 2012 convention)."""
    alpha = np.zeros(labels.shape, dtype=np.float32)
    _paste(alpha, placed.alpha, placed.left, placed.top)
    inside = alpha >= 0.5
    annotation = placed.annotation
    if annotation.difficult:
        labels[inside] = VOID
        return
    labels[inside] = annotation.label + 1
    labels[_outline_band(inside, VOID_BAND)] = VOID


def _outline_band(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (chessboard distance) of the mask's outline, on either side."""
    padded = np.pad(mask, radius, mode="edge")
    height, width = mask.shape
    grown = np.zeros_like(mask)
    shrunk = np.ones_like(mask)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            window = padded[dy : dy + height, dx : dx + width]
            grown |= window
            shrunk &= window
    band: np.ndarray = grown & ~shrunk
    return band


@dataclass(frozen=True)
class _PlacedObject:
    annotation: _DrawnObject
    left: int  # patch position in the canvas (negative or past the image: truncated)
    top: int
    angle: float
    mask_hi: Image.Image  # shape mask of the square patch at _SUPERSAMPLE × its side
    alpha: np.ndarray  # the same, downsampled: (patch, patch) in [0, 1]


def _place_object(
    cls: SyntheticClass, label: int, image_size: tuple[int, int], rng: np.random.Generator
) -> _PlacedObject | None:
    """A random size, position and pose, and the object's annotation; None if off the image."""
    width, height = image_size
    small = rng.uniform() < SMALL_OBJECT_PROBABILITY
    extent = rng.uniform(0.08, 0.14) if small else rng.uniform(0.3, 0.75)
    patch = max(8, round(extent * min(width, height) / (2 * _RADIUS * 1.1)))
    left = round(rng.uniform(0.1, 0.9) * width - patch / 2)
    top = round(rng.uniform(0.1, 0.9) * height - patch / 2)
    angle = math.radians(rng.uniform(-25.0, 25.0))
    stretch = rng.uniform(0.88, 1.12)
    mask_hi = _shape_mask(
        cls.shape, patch * _SUPERSAMPLE, np.array([0.5, 0.5]), _RADIUS, angle, stretch
    )
    alpha = _downsample(np.asarray(mask_hi, dtype=np.float32) / 255.0)
    ys, xs = np.nonzero(alpha >= 0.5)
    if len(xs) == 0:
        return None
    full = (left + xs.min(), top + ys.min(), left + xs.max(), top + ys.max())  # 0-based, incl.
    visible = (max(full[0], 0), max(full[1], 0), min(full[2], width - 1), min(full[3], height - 1))
    if visible[2] < visible[0] or visible[3] < visible[1]:
        return None
    box = (visible[0] + 1, visible[1] + 1, visible[2] + 1, visible[3] + 1)
    annotation = _DrawnObject(
        label=label,
        box=box,
        truncated=full != visible,
        difficult=box_area(box) < DIFFICULT_FRACTION * width * height,
    )
    return _PlacedObject(annotation, left, top, angle, mask_hi, alpha)


def _paint(
    canvas: np.ndarray, cls: SyntheticClass, placed: _PlacedObject, rng: np.random.Generator
) -> None:
    """Draw the object onto the square canvas."""
    full_alpha = np.zeros(canvas.shape[:2], dtype=np.float32)
    _paste(full_alpha, placed.alpha, placed.left, placed.top)
    patch = placed.alpha.shape[0]
    surface, _ = object_surface(
        patch, np.array([0.5, 0.5]), _RADIUS, placed.angle, placed.mask_hi, rng
    )
    full_surface = np.zeros_like(canvas)
    _paste(full_surface, surface, placed.left, placed.top)
    canvas *= 1.0 - full_alpha[..., None]
    canvas += full_surface * full_alpha[..., None]


def _paste(target: np.ndarray, patch: np.ndarray, left: int, top: int) -> None:
    """Write ``patch`` into ``target`` at (left, top), clipped to ``target``."""
    height, width = target.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1 = min(left + patch.shape[1], width)
    y1 = min(top + patch.shape[0], height)
    if x1 > x0 and y1 > y0:
        target[y0:y1, x0:x1] = patch[y0 - top : y1 - top, x0 - left : x1 - left]


def _iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area - inter)


# ---------------------------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------------------------


def _write_annotation(
    path: Path, image_id: str, image: Image.Image, objects: list[_DrawnObject]
) -> None:
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "folder").text = "VOC2007"
    ET.SubElement(annotation, "filename").text = f"{image_id}.jpg"
    source = ET.SubElement(annotation, "source")
    ET.SubElement(source, "database").text = "ssl_rl synthetic VOC2007 stand-in"
    ET.SubElement(source, "annotation").text = "PASCAL VOC2007"
    ET.SubElement(source, "image").text = "procedural"
    size = ET.SubElement(annotation, "size")
    for tag, value in (("width", image.width), ("height", image.height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(annotation, "segmented").text = "0"
    for obj in objects:
        element = ET.SubElement(annotation, "object")
        ET.SubElement(element, "name").text = VOC_CLASSES[obj.label]
        ET.SubElement(element, "pose").text = "Unspecified"
        ET.SubElement(element, "truncated").text = str(int(obj.truncated))
        ET.SubElement(element, "difficult").text = str(int(obj.difficult))
        bndbox = ET.SubElement(element, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.box, strict=True):
            ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(annotation, space="\t")
    path.write_text(ET.tostring(annotation, encoding="unicode") + "\n")


def voc_palette() -> list[int]:
    """The VOC devkit's colour map (``VOClabelcolormap.m``) as a flat 768-entry PIL palette."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        value = index
        for bit in range(8):
            red |= ((value >> 0) & 1) << (7 - bit)
            green |= ((value >> 1) & 1) << (7 - bit)
            blue |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette += [red, green, blue]
    return palette


def _write_label_map(path: Path, labels: np.ndarray) -> None:
    image = Image.fromarray(labels, mode="P")
    image.putpalette(voc_palette())
    image.save(path, format="PNG")


def _prepare_root(root: Path) -> None:
    """Empty ``root`` if it holds an earlier synthetic VOC; refuse to touch anything else."""
    if holds_earlier_dataset(root, COMPLETE_MARKER, IN_PROGRESS_MARKER, "VOC", "VOC"):
        logger.info("Regenerating the synthetic VOC dataset in %s", root)
        shutil.rmtree(root / "VOCdevkit", ignore_errors=True)
        (root / COMPLETE_MARKER).unlink(missing_ok=True)
