"""Procedural stand-in for ImageNet, written in the real ImageFolder format.

Layout (what :class:`~ssl_rl.data.readers.image_folder.ImageFolderIndex` reads)::

    root/train/<wnid>/<wnid>_<k>.JPEG
    root/val/<wnid>/ILSVRC2012_val_<n>.JPEG      (the usual "valprep" class-folder layout)
    root/classes.txt                             lines "<wnid> <readable name>"

Every class is an object outline (:mod:`synthetic_shapes`: simple shapes and objects made
of parts in a fixed layout); colour, surface pattern (stripes at an orientation, checker,
dots, ...), size, position and rotation (within limits) are drawn per image, so the class is
defined by shape and part layout only. The object is large (it spans most cells of a 3 × 3
jigsaw grid) on a calm background of smooth colour blobs, so that tile positions are told by
the object's parts: nothing else says where up or the object is (no horizon or gradient, no
drop shadow, no lighting from the top; with them the jigsaw's features retrieved the objects
barely better than random ones). Small distractors and pixel noise keep tiles from being
flat.

Each image is drawn from its own RNG seeded by (seed, split, class, index), so
the dataset is deterministic from ``seed`` whatever the number of processes.
A completion marker holding the parameters is written last; a folder without it
(interrupted run) or with other parameters is regenerated.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import multiprocessing
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from ssl_rl.data.synthetic.markers import holds_earlier_dataset, read_marker
from ssl_rl.data.synthetic.shapes import SHAPES, unit_polygons

logger = logging.getLogger(__name__)

PATTERNS = (
    "horizontal stripes",
    "checker",
    "dots",
    "diagonal stripes",
    "bordered",
    "vertical stripes",
    "concentric rings",
    "grid lines",
    "zigzag",
    "sunburst",
)
MAX_CLASSES = len(SHAPES)
COMPLETE_MARKER = ".synthetic_complete.json"
IN_PROGRESS_MARKER = ".synthetic_in_progress"
# 2: a class is an outline only; the pattern is drawn per image (it was part of the class).
# 3: calm background, large objects, no drop shadow and no top lighting (jigsaw cues that are
#    not the object's parts).
_FORMAT_VERSION = 3
_SUPERSAMPLE = 2
_JPEG_QUALITY = 90


@dataclass(frozen=True)
class SyntheticClass:
    wnid: str
    shape: str

    @property
    def name(self) -> str:
        return self.shape


def synthetic_classes(num_classes: int) -> list[SyntheticClass]:
    """Class ``i``: outline ``SHAPES[i]``."""
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in [1, {MAX_CLASSES}], got {num_classes}")
    return [SyntheticClass(f"n{90000001 + i:08d}", SHAPES[i]) for i in range(num_classes)]


@dataclass(frozen=True)
class _Spec:
    """Everything that determines the dataset's content (stored in the completion marker)."""

    num_classes: int
    train_per_class: int
    val_per_class: int
    image_size: int
    seed: int
    version: int = _FORMAT_VERSION

    def __post_init__(self) -> None:
        synthetic_classes(self.num_classes)  # validates num_classes
        if self.train_per_class < 1 or self.val_per_class < 0:
            raise ValueError(
                f"need train_per_class >= 1 and val_per_class >= 0, "
                f"got {self.train_per_class}, {self.val_per_class}"
            )
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32, got {self.image_size}")


def ensure_image_dataset(
    root: Path,
    num_classes: int = 10,
    train_per_class: int = 100,
    val_per_class: int = 20,
    image_size: int = 128,
    seed: int = 0,
    progress: bool = True,
    workers: int = 1,
) -> Path:
    """Return ``root`` at once if it is complete with these parameters, else write the dataset
    there (replacing an earlier synthetic one) and return ``root``.

    ``workers`` > 1 renders in that many processes; the files are the same either way.
    """
    root = Path(root)
    spec = _Spec(num_classes, train_per_class, val_per_class, image_size, seed)
    if read_marker(root / COMPLETE_MARKER) == asdict(spec):
        return root
    return _generate(root, spec, progress, workers)


def _generate(root: Path, spec: _Spec, progress: bool, workers: int) -> Path:
    """Write the dataset of ``spec`` under ``root``; the completion marker comes last."""
    _prepare_root(root)
    (root / IN_PROGRESS_MARKER).touch()
    classes = synthetic_classes(spec.num_classes)
    (root / "classes.txt").write_text("".join(f"{c.wnid} {c.name}\n" for c in classes))
    for split in ("train", "val"):
        for cls in classes:
            (root / split / cls.wnid).mkdir(parents=True, exist_ok=True)
    jobs = [
        (root, spec, split, label, k)
        for split, count in (("train", spec.train_per_class), ("val", spec.val_per_class))
        for label in range(spec.num_classes)
        for k in range(count)
    ]
    bar = tqdm(total=len(jobs), desc=f"synthetic images → {root}", disable=not progress)
    with bar:
        if workers > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(_write_image, jobs, chunksize=16):
                    bar.update()
        else:
            for job in jobs:
                _write_image(job)
                bar.update()
    (root / COMPLETE_MARKER).write_text(json.dumps(asdict(spec), indent=1))
    (root / IN_PROGRESS_MARKER).unlink()
    return root


def _write_image(job: tuple[Path, _Spec, str, int, int]) -> None:
    root, spec, split, label, k = job
    cls = synthetic_classes(spec.num_classes)[label]
    rng = np.random.default_rng([spec.seed, 0 if split == "train" else 1, label, k])
    image = render_image(cls, spec.image_size, rng)
    name = f"{cls.wnid}_{k}.JPEG" if split == "train" else _val_name(label, k, spec.val_per_class)
    image.save(root / split / cls.wnid / name, format="JPEG", quality=_JPEG_QUALITY)


def _val_name(label: int, k: int, val_per_class: int) -> str:
    return f"ILSVRC2012_val_{label * val_per_class + k + 1:08d}.JPEG"


def _prepare_root(root: Path) -> None:
    """Empty ``root`` if it holds an earlier synthetic dataset; refuse to touch anything else."""
    if holds_earlier_dataset(root, COMPLETE_MARKER, IN_PROGRESS_MARKER, "image", "dataset"):
        logger.info("Regenerating the synthetic image dataset in %s", root)
        for entry in ("train", "val"):
            shutil.rmtree(root / entry, ignore_errors=True)
        for entry in ("classes.txt", COMPLETE_MARKER):
            (root / entry).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Rendering. Colours are composed at the output size; edges (shape outlines, patterns,
# distractors) are drawn at _SUPERSAMPLE × the size and box-filtered down, for antialiasing.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedImage:
    """One image, the object's coverage (size, size) in [0, 1] and its drawn pattern."""

    image: Image.Image
    alpha: np.ndarray
    pattern: str


def render_image(cls: SyntheticClass, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB image of an object of class ``cls`` on a random background."""
    return render_instance(cls, size, rng).image


def render_instance(cls: SyntheticClass, size: int, rng: np.random.Generator) -> RenderedImage:
    """:func:`render_image` with the object's coverage and pattern (for checks)."""
    ys, xs = _unit_grid(size)
    canvas = _background(ys, xs, rng)
    centre = rng.uniform(0.42, 0.58, size=2)  # (x, y)
    radius = rng.uniform(0.34, 0.42)  # large: most jigsaw tiles show a part of the object
    angle = math.radians(rng.uniform(-25.0, 25.0))
    stretch = rng.uniform(0.88, 1.12)
    mask_hi = _shape_mask(cls.shape, size * _SUPERSAMPLE, centre, radius, angle, stretch)
    object_alpha = _downsample(np.asarray(mask_hi, dtype=np.float32) / 255.0)
    _draw_distractors(canvas, size, rng)
    surface, pattern = object_surface(size, centre, radius, angle, mask_hi, rng)
    alpha = object_alpha[..., None]
    canvas = canvas * (1.0 - alpha) + surface * alpha
    canvas += rng.normal(0.0, 2.5, size=canvas.shape).astype(np.float32)
    image = Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    return RenderedImage(image, object_alpha, pattern)


@functools.lru_cache(maxsize=4)
def _unit_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) in [0, 1), read-only."""
    ys, xs = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs


def _downsample(values: np.ndarray) -> np.ndarray:
    """Box-filter a (S·k, S·k) array down by k = _SUPERSAMPLE."""
    k = _SUPERSAMPLE
    # k > 0 terms, so never sum's start value 0.
    total = cast(np.ndarray, sum(values[i::k, j::k] for i in range(k) for j in range(k)))
    return total.astype(np.float32) / (k * k)


def _random_colour(rng: np.random.Generator, low: float = 0.35, high: float = 1.0) -> np.ndarray:
    """A saturated-ish RGB colour in [0, 255] from a random hue."""
    hue = rng.uniform(0, 1)
    saturation = rng.uniform(0.35, 0.9)
    value = rng.uniform(low, high)
    rgb = np.clip(np.abs(((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6) - 3) - 1, 0, 1)
    colour: np.ndarray = (value * (1 - saturation + saturation * rgb) * 255).astype(np.float32)
    return colour


def _smooth_noise(side: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise in about [-1, 1], shape (side, side): a bicubic-upsampled grid."""
    grid = rng.uniform(-1, 1, size=(cells, cells)).astype(np.float32)
    field = Image.fromarray(grid, mode="F").resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(field, dtype=np.float32)


def _background(ys: np.ndarray, xs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smooth blobs of three random colours at 40 % contrast, with faint shading.

    No horizon or gradient across the image: with such global layout cues the jigsaw was
    solved from the background, and its features retrieved the demo's objects no better
    than random ones.
    """
    size = ys.shape[0]
    weights = np.stack(
        [np.maximum(_smooth_noise(size, 4, rng) + 1.2, 0.05) for _ in range(3)], axis=-1
    )
    colours = np.stack([_random_colour(rng) for _ in range(3)])
    canvas = (weights / weights.sum(-1, keepdims=True)) @ colours
    mean = canvas.reshape(-1, 3).mean(axis=0)
    canvas = mean + 0.4 * (canvas - mean)
    shading = 1 + 0.06 * _smooth_noise(size, 5, rng)
    background: np.ndarray = (canvas * shading[..., None]).astype(np.float32)
    return background


def _shape_mask(
    shape: str, side: int, centre: np.ndarray, radius: float, angle: float, stretch: float
) -> Image.Image:
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    cos, sin = math.cos(angle), math.sin(angle)
    for points, fill in unit_polygons(shape):
        placed = [
            (
                (centre[0] + radius * (x * stretch * cos - y * sin)) * side,
                (centre[1] + radius * (x * stretch * sin + y * cos)) * side,
            )
            for x, y in points
        ]
        draw.polygon(placed, fill=255 if fill else 0)
    return mask


def object_surface(
    size: int,
    centre: np.ndarray,
    radius: float,
    angle: float,
    mask_hi: Image.Image,
    rng: np.random.Generator,
) -> tuple[np.ndarray, str]:
    """The surface of one instance: a random pattern (one of :data:`PATTERNS`, returned too) in
    random colours."""
    pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
    surface = _object_surface(pattern, size, centre, radius, angle, rng)
    if pattern == "bordered":
        surface = _add_border(surface, mask_hi, rng)
    return surface, pattern


def _object_surface(
    pattern: str,
    size: int,
    centre: np.ndarray,
    radius: float,
    angle: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Object colours over the whole canvas (masked later): two colours mixed by the pattern."""
    ys, xs = _unit_grid(size * _SUPERSAMPLE)
    dx, dy = (xs - centre[0]) / radius, (ys - centre[1]) / radius
    u = math.cos(angle) * dx + math.sin(angle) * dy  # object coordinates: rotate with it
    v = -math.sin(angle) * dx + math.cos(angle) * dy
    coverage = _downsample(_pattern(pattern, u, v, rng).astype(np.uint8))[..., None]
    base = _random_colour(rng, 0.45, 1.0)
    accent = 255.0 - base if rng.uniform() < 0.5 else base * rng.uniform(0.25, 0.5)
    surface: np.ndarray = (base + (accent - base) * coverage).astype(np.float32)
    return surface


def _pattern(
    pattern: str,
    u: npt.NDArray[np.float64],
    v: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> npt.NDArray[np.bool_]:
    """Boolean accent-colour map of a surface pattern in object coordinates (u, v)."""
    period = rng.uniform(0.28, 0.36)
    phase = rng.uniform(0, 2 * math.pi)
    wave = 2 * math.pi / period
    if pattern == "horizontal stripes":
        return np.sin(wave * v + phase) > 0
    if pattern == "vertical stripes":
        return np.sin(wave * u + phase) > 0
    if pattern == "diagonal stripes":
        return np.sin(wave * (u + v) / math.sqrt(2) + phase) > 0
    if pattern == "checker":
        checker: npt.NDArray[np.bool_] = (np.floor(u / period) + np.floor(v / period)) % 2 == 0
        return checker
    if pattern == "dots":
        cell = period * 1.2
        fu, fv = (u / cell) % 1 - 0.5, (v / cell) % 1 - 0.5
        return fu**2 + fv**2 < 0.3**2
    if pattern == "concentric rings":
        return np.sin(wave * np.sqrt(u**2 + v**2) + phase) > 0
    if pattern == "grid lines":
        cell = period * 1.3
        return (np.abs((u / cell) % 1 - 0.5) > 0.38) | (np.abs((v / cell) % 1 - 0.5) > 0.38)
    if pattern == "zigzag":
        zig = np.abs((u / period) % 1 - 0.5) * period
        return np.sin(wave * (v + zig) + phase) > 0
    if pattern == "sunburst":
        return np.sin(10 * np.arctan2(v, u) + phase) > 0
    if pattern == "bordered":
        return np.zeros(u.shape, dtype=bool)
    raise ValueError(f"unknown pattern {pattern!r}")


def _add_border(surface: np.ndarray, mask_hi: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """Darken a band along the object outline (the "bordered" pattern)."""
    radius = max(1, mask_hi.width // 64)
    # A pixel is inside the eroded shape iff its whole box neighbourhood is inside the shape.
    inner = np.asarray(mask_hi.filter(ImageFilter.BoxBlur(radius)), dtype=np.float32) >= 254.5
    outline = np.asarray(mask_hi, dtype=np.float32) / 255.0 - inner
    band = _downsample(np.clip(outline, 0, 1))[..., None]
    colour = _random_colour(rng, 0.05, 0.35)
    bordered: np.ndarray = surface + (colour - surface) * band
    return bordered


def _draw_distractors(canvas: np.ndarray, size: int, rng: np.random.Generator) -> None:
    """A few small blobs and sticks, so that not every coloured region belongs to the object."""
    side = size * _SUPERSAMPLE
    layer = Image.new("RGB", (side, side), 0)
    mask = Image.new("L", (side, side), 0)
    draw_layer, draw_mask = ImageDraw.Draw(layer), ImageDraw.Draw(mask)
    for _ in range(rng.integers(2, 5)):
        x, y = rng.uniform(0.05, 0.95, size=2) * side
        colour = tuple(int(c) for c in _random_colour(rng, 0.2, 0.9))
        if rng.uniform() < 0.5:
            rx, ry = rng.uniform(0.02, 0.06, size=2) * side
            box = [x - rx, y - ry, x + rx, y + ry]
            draw_layer.ellipse(box, fill=colour)
            draw_mask.ellipse(box, fill=255)
        else:
            length, direction = rng.uniform(0.08, 0.2) * side, rng.uniform(0, math.pi)
            end = (x + length * math.cos(direction), y + length * math.sin(direction))
            width = max(1, int(side * rng.uniform(0.008, 0.02)))
            draw_layer.line([(x, y), end], fill=colour, width=width)
            draw_mask.line([(x, y), end], fill=255, width=width)
    # Premultiplied colour, so the box filter does not darken the edges.
    colour_low = np.asarray(layer.resize((size, size), Image.Resampling.BOX), np.float32)
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), np.float32) / 255.0
    canvas *= 1 - alpha[..., None]
    canvas += colour_low
