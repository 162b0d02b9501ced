"""The offline demo's stand-in for UCF-101: procedural action videos in the release's format.

``<root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` (MPEG-4 Part 2 in AVI, 25 fps, like UCF-101's
Xvid) and ``<root>/ucfTrainTestlist/`` (classInd.txt, trainlist0{1,2,3}.txt,
testlist0{1,2,3}.txt with CRLF endings). A class is one object shape doing one kind of motion
(a path, a turn, a deformation, a damped periodic motion; :mod:`motions`), each with a
clear arrow of time. Nothing else belongs to the class: colours, texture, background, size and
speed are drawn per group (UCF-101's "same actor and scene") and varied per clip, so a
single frame tells its class only by the object's shape and pose, and untrained features that
mostly see colour statistics cannot retrieve it. Splits follow the official group rule scaled
down: split k tests on the k-th block of round(7/25 · groups) groups; the last groups always
train. Everything is determined by ``seed``; a marker written last (with the parameters and
``GENERATOR_VERSION``) makes it idempotent.

The objects are the still-image classes' outlines (:mod:`shapes`), large (about half
the frame height across) on a low-contrast background, so the motion survives the temporal
task's small frames (36 px, a 1×1 pool5 in the demo trunk); with smaller objects on a busier
background the demo's order task stayed at chance.
"""

from __future__ import annotations

import colorsys
import inspect
import json
import logging
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.readers.video_io import write_avi
from ssl_rl.data.synthetic import motions
from ssl_rl.data.synthetic.motions import Motion, Trajectory
from ssl_rl.data.synthetic.shapes import unit_polygons

logger = logging.getLogger(__name__)

MARKER = ".ssl_rl_complete.json"
# Bump whenever the rendered content changes: a cache made by another version is refused.
# 2: objects 0.20-0.25 (was 0.13-0.17) of the height, background contrast about halved.
# 3: classes are shape + kind of motion only; colour, texture, background, size vary per group
#    and clip (each class had its own colour family and texture, which random features retrieve).
# 4: no ring texture (a radial pattern marks the object's centre, a cue that is not its shape).
GENERATOR_VERSION = 4
FPS = 25
_SUPERSAMPLE = 4  # outlines are drawn at 4x and box-filtered down (antialiasing)


@dataclass(frozen=True)
class VideoDatasetPaths:
    """Where a generated dataset lives, in the layout the UCF-101 reader expects."""

    root: Path
    video_root: Path
    split_dir: Path
    classes: tuple[str, ...]


@dataclass(frozen=True)
class _ClassSpec:
    """A class: one object shape doing one kind of motion (appearance is drawn per clip)."""

    name: str
    shape: str
    motion: Motion


# Ordered so that any prefix mixes kinds of motion: path, turn, deformation, periodic. No class
# of the first ten is another's time reversal (as Grow and Shrink are), so a clip's order can
# be read from the clip alone: with colour no longer naming the class, reversed pairs left the
# demo's order task at chance. The last two nearly reverse FallDown and Grow (more classes).
CLASS_SPECS: tuple[_ClassSpec, ...] = (
    _ClassSpec("MoveRight", "house", motions.linear_move((1, 0))),
    _ClassSpec("FallDown", "table", motions.fall),
    _ClassSpec("Grow", "star", motions.scale_change((0.5, 0.65), (1.4, 1.7))),
    _ClassSpec("RotateClockwise", "arrow", motions.rotate(+1.0)),
    _ClassSpec("BounceBall", "ring", motions.bounce),
    _ClassSpec("Orbit", "cross", motions.orbit),
    _ClassSpec("Roll", "crescent", motions.roll),
    _ClassSpec("Swing", "lollipop", motions.swing),
    _ClassSpec("Squash", "snowman", motions.squash),
    _ClassSpec("Zigzag", "mushroom", motions.zigzag),
    _ClassSpec("MoveUp", "triangle", motions.linear_move((0, -1))),
    _ClassSpec("Shrink", "hexagon", motions.scale_change((1.4, 1.7), (0.5, 0.65))),
)

TEXTURES = ("solid", "stripes", "checker", "gradient", "dots")


@dataclass(frozen=True)
class Appearance:
    """What a clip looks like, none of it tied to the class: the nuisance factors."""

    colour: tuple[float, float, float]  # RGB in [0, 1]
    accent: tuple[float, float, float]  # the texture's second colour
    texture: str
    texture_period: float  # in object radii
    texture_angle: float
    radius: float  # base radius, px
    background_luma: float
    background_tint: tuple[float, float, float]


@dataclass(frozen=True)
class RenderedClip:
    """The RGB uint8 frames of one clip, the object's mask per frame and its draws."""

    frames: list[np.ndarray]
    masks: np.ndarray  # (frames, H, W) bool: object coverage >= 1/2
    appearance: Appearance
    trajectory: Trajectory


def _outline_alpha(
    shape: str,
    box: tuple[int, int, int, int],
    cx: float,
    cy: float,
    radius: float,
    sx: float,
    sy: float,
    cos: float,
    sin: float,
) -> np.ndarray:
    """Coverage in [0, 1] of ``box`` (x0, y0, x1, y1) by the outline, drawn supersampled."""
    x0, y0, x1, y1 = box
    mask = Image.new("L", ((x1 - x0) * _SUPERSAMPLE, (y1 - y0) * _SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(mask)
    for points, fill in unit_polygons(shape):
        placed = [
            (
                (cx - x0 + radius * (sx * x * cos - sy * y * sin)) * _SUPERSAMPLE,
                (cy - y0 + radius * (sx * x * sin + sy * y * cos)) * _SUPERSAMPLE,
            )
            for x, y in points
        ]
        draw.polygon(placed, fill=255 if fill else 0)
    fine = np.asarray(mask, dtype=np.float32).reshape(y1 - y0, _SUPERSAMPLE, x1 - x0, _SUPERSAMPLE)
    coverage: np.ndarray = fine.mean(axis=(1, 3)) / 255.0
    return coverage


def _texture(appearance: Appearance, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Weight of the accent colour in [0, 1], fixed to the object (moves and turns with it)."""
    kind, period = appearance.texture, appearance.texture_period
    cos, sin = np.cos(appearance.texture_angle), np.sin(appearance.texture_angle)
    a, b = cos * u + sin * v, -sin * u + cos * v
    if kind == "solid":
        return np.zeros_like(u)
    if kind == "gradient":
        ramp: np.ndarray = np.clip((a + 1.0) / 2.0, 0.0, 1.0)
        return ramp
    if kind == "stripes":
        wave = np.sin(a * 2 * np.pi / period)
    elif kind == "checker":
        wave = np.sin(a * 2 * np.pi / period) * np.sin(b * 2 * np.pi / period) * 3
    elif kind == "dots":
        wave = np.cos(a * 2 * np.pi / period) + np.cos(b * 2 * np.pi / period) - 1.0
    else:
        raise ValueError(f"unknown texture {kind!r}")
    weight: np.ndarray = 0.5 + 0.5 * np.tanh(3.0 * wave)
    return weight


def _hsv(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, float(np.clip(saturation, 0, 1)), value)
    return (r, g, b)


def _appearance(
    group_rng: np.random.Generator, clip_rng: np.random.Generator, height: int
) -> Appearance:
    """The group's "actor and scene" (colours, texture, size, background), varied per clip."""
    hue, saturation = group_rng.uniform(0, 1), group_rng.uniform(0.45, 1.0)
    light_object = group_rng.uniform() < 0.7
    if light_object:  # a light object on a darker scene, or the reverse
        value, luma = group_rng.uniform(0.75, 1.0), group_rng.uniform(0.22, 0.42)
    else:
        value, luma = group_rng.uniform(0.25, 0.45), group_rng.uniform(0.6, 0.78)
    texture = str(group_rng.choice(TEXTURES))
    accent_hue = hue if group_rng.uniform() < 0.5 else group_rng.uniform(0, 1)
    accent_value = value * group_rng.uniform(0.4, 0.65) if light_object else value * 1.8
    tint = _hsv(group_rng.uniform(0, 1), group_rng.uniform(0, 0.35), 1.0)
    size = group_rng.uniform(0.24, 0.31)
    # Per clip: the same actor in other light, closer or further.
    hue += clip_rng.uniform(-0.04, 0.04)
    return Appearance(
        colour=_hsv(hue, saturation + clip_rng.uniform(-0.1, 0.1), value),
        accent=_hsv(accent_hue, saturation, min(accent_value, 1.0)),
        texture=texture,
        texture_period=clip_rng.uniform(0.4, 0.7),
        texture_angle=clip_rng.uniform(0, np.pi),
        radius=size * clip_rng.uniform(0.9, 1.1) * height,
        background_luma=luma,
        background_tint=tint,
    )


def _background(
    rng: np.random.Generator, width: int, height: int, luma: float, tint: tuple[float, ...]
) -> np.ndarray:
    """A calm texture: smooth noise plus a faint grating around ``luma``, float RGB in [0, 1]."""
    coarse = rng.uniform(0, 1, (max(2, height // 12), max(2, width // 12))).astype(np.float32)
    smooth = np.asarray(
        Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BICUBIC)
    )
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, np.pi)
    grating = np.sin(
        (xs * np.cos(direction) + ys * np.sin(direction)) * 2 * np.pi / rng.uniform(6, 14)
    )
    shade = luma + 0.16 * (np.clip(smooth, 0, 1) - 0.5) + 0.03 * grating
    # max() of a numpy and a Python float: typeshed's max cannot say which comes back.
    mean_tint = cast("np.floating[Any] | float", max(np.mean(tint), 1e-3))
    tint_rgb = np.asarray(tint, dtype=np.float32) / mean_tint
    background: np.ndarray = np.clip(shade[..., None] * tint_rgb, 0, 1).astype(np.float32)
    return background


def render_clip(
    spec: _ClassSpec,
    group_rng: np.random.Generator,
    clip_rng: np.random.Generator,
    num_frames: int,
    width: int,
    height: int,
) -> RenderedClip:
    """One clip of class ``spec``: the group's scene and actor, this clip's motion and noise."""
    max_pan = 0.4
    pad = int(np.ceil(max_pan * num_frames)) + 2
    appearance = _appearance(group_rng, clip_rng, height)
    scenery = _background(
        group_rng,
        width + 2 * pad,
        height + 2 * pad,
        appearance.background_luma,
        appearance.background_tint,
    )
    t = np.linspace(0.0, 1.0, num_frames)
    path = spec.motion(t, clip_rng, width, height, appearance.radius)
    pan_direction = clip_rng.uniform(0, 2 * np.pi)
    pan = clip_rng.uniform(0, max_pan) * np.arange(num_frames)
    noise_level = clip_rng.uniform(0.005, 0.015)
    frames, masks = [], np.zeros((num_frames, height, width), dtype=bool)
    for k in range(num_frames):
        left = pad + round(float(pan[k] * np.cos(pan_direction)))
        top = pad + round(float(pan[k] * np.sin(pan_direction)))
        image = scenery[top : top + height, left : left + width].copy()
        masks[k] = _paint_object(image, spec.shape, path, k, appearance) >= 0.5
        image += noise_level * clip_rng.standard_normal(image.shape, dtype=np.float32)
        frames.append((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    return RenderedClip(frames, masks, appearance, path)


def _paint_object(
    image: np.ndarray, shape: str, path: Trajectory, k: int, appearance: Appearance
) -> np.ndarray:
    """Composites the object of frame ``k`` into ``image`` (in place, antialiased); its alpha."""
    height, width = image.shape[:2]
    coverage = np.zeros((height, width), dtype=np.float32)
    radius = appearance.radius * path.scale[k]
    sx, sy = np.sqrt(path.stretch[k]), 1 / np.sqrt(path.stretch[k])
    reach = 1.3 * radius * max(sx, sy) + 2  # every outline lies within 1.2 units of its centre
    x0, x1 = max(0, int(path.x[k] - reach)), min(width, int(path.x[k] + reach) + 1)
    y0, y1 = max(0, int(path.y[k] - reach)), min(height, int(path.y[k] + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return coverage  # outside the frame
    cos, sin = np.cos(path.angle[k]), np.sin(path.angle[k])
    alpha = _outline_alpha(shape, (x0, y0, x1, y1), path.x[k], path.y[k], radius, sx, sy, cos, sin)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    du, dv = xs - path.x[k], ys - path.y[k]
    u = (cos * du + sin * dv) / (radius * sx)
    v = (-sin * du + cos * dv) / (radius * sy)
    colour, accent = np.asarray(appearance.colour), np.asarray(appearance.accent)
    paint = colour + (accent - colour) * _texture(appearance, u, v)[..., None]
    patch = image[y0:y1, x0:x1]
    image[y0:y1, x0:x1] = patch * (1 - alpha[..., None]) + paint * alpha[..., None]
    coverage[y0:y1, x0:x1] = alpha
    return coverage


def groups_in_test_split(groups: int, split: int) -> list[int]:
    """1-based groups tested in ``split``: the official rule (7 of 25 per split) scaled down."""
    block = max(1, round(groups * 7 / 25))
    if 3 * block >= groups:
        raise ValueError(f"need more than {3 * block} groups for three disjoint test blocks")
    return list(range((split - 1) * block + 1, split * block + 1))


def video_name(class_name: str, group: int, clip: int) -> str:
    return f"v_{class_name}_g{group:02d}_c{clip:02d}.avi"


def _params(**kwargs: object) -> dict[str, object]:
    """The marker's content: the generator's parameters and version, as JSON would load them."""
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    return {**params, "generator_version": GENERATOR_VERSION}


def generate_video_dataset(
    root: Path | str,
    num_classes: int = 10,
    groups: int = 8,
    clips_per_group: int = 3,
    num_frames: int | tuple[int, int] = 40,
    width: int = 128,
    height: int = 96,
    seed: int = 0,
    progress: bool = True,
    workers: int = 1,
) -> VideoDatasetPaths:
    """Writes the dataset under ``root`` (overwriting its files); the marker comes last.

    ``num_frames`` is a length, or an inclusive (min, max) range drawn per clip. ``workers`` > 1
    renders in that many processes; the files are the same either way.
    """
    if not 1 <= num_classes <= len(CLASS_SPECS):
        raise ValueError(f"num_classes must be in 1..{len(CLASS_SPECS)}, got {num_classes}")
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
    lengths = (num_frames, num_frames) if isinstance(num_frames, int) else tuple(num_frames)
    if not 1 <= lengths[0] <= lengths[1]:
        raise ValueError(f"num_frames must be positive (or a min <= max range), got {num_frames}")
    root = Path(root)
    params = _params(
        num_classes=num_classes,
        groups=groups,
        clips_per_group=clips_per_group,
        num_frames=num_frames,
        width=width,
        height=height,
        seed=seed,
    )
    tests = {split: set(groups_in_test_split(groups, split)) for split in (1, 2, 3)}
    specs = CLASS_SPECS[:num_classes]
    paths = VideoDatasetPaths(
        root, root / "UCF-101", root / "ucfTrainTestlist", tuple(s.name for s in specs)
    )
    (root / MARKER).unlink(missing_ok=True)
    jobs = [
        (c, g, k) for c in range(num_classes) for g in range(1, groups + 1)
        for k in range(1, clips_per_group + 1)
    ]  # fmt: skip
    clips = [(paths.video_root, seed, lengths, width, height, *job) for job in jobs]
    bar = tqdm(total=len(clips), desc="demo videos", unit="video", disable=not progress)
    with bar:
        if workers > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(_write_clip, clips):
                    bar.update()
        else:
            for clip in clips:
                _write_clip(clip)
                bar.update()
    _write_split_lists(paths, specs, groups, clips_per_group, tests)
    (root / MARKER).write_text(json.dumps(params, sort_keys=True))
    logger.info("generated %d demo videos under %s", len(jobs), root)
    return paths


def _write_clip(job: tuple[Path, int, tuple[int, ...], int, int, int, int, int]) -> None:
    """Render and write one clip (a job of :func:`generate_video_dataset`)."""
    video_root, seed, lengths, width, height, class_index, group, clip = job
    spec = CLASS_SPECS[class_index]
    group_rng = np.random.default_rng([seed, class_index, group])
    clip_rng = np.random.default_rng([seed, class_index, group, clip])
    length = int(clip_rng.integers(lengths[0], lengths[1] + 1))
    frames = render_clip(spec, group_rng, clip_rng, length, width, height).frames
    target = video_root / spec.name / video_name(spec.name, group, clip)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    write_avi(partial, frames, fps=FPS)
    os.replace(partial, target)


_GENERATOR_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(generate_video_dataset).parameters.items()
    if name not in ("root", "progress", "workers")
}


def _write_split_lists(
    paths: VideoDatasetPaths,
    specs: tuple[_ClassSpec, ...],
    groups: int,
    clips_per_group: int,
    tests: dict[int, set[int]],
) -> None:
    paths.split_dir.mkdir(parents=True, exist_ok=True)

    def write(name: str, lines: list[str]) -> None:
        # The official lists are Windows text files.
        (paths.split_dir / name).write_bytes("".join(f"{x}\r\n" for x in lines).encode())

    write("classInd.txt", [f"{i + 1} {spec.name}" for i, spec in enumerate(specs)])
    for split, tested in tests.items():
        train, test = [], []
        for label, spec in enumerate(specs, 1):
            for group in range(1, groups + 1):
                for clip in range(1, clips_per_group + 1):
                    entry = f"{spec.name}/{video_name(spec.name, group, clip)}"
                    if group in tested:
                        test.append(entry)
                    else:
                        train.append(f"{entry} {label}")
        write(f"trainlist0{split}.txt", train)
        write(f"testlist0{split}.txt", test)


def ensure_video_dataset(root: Path | str, **kwargs: object) -> VideoDatasetPaths:
    """Generates the dataset unless ``root`` already holds one made with the same parameters.

    A ``root`` made with other parameters or by another ``GENERATOR_VERSION`` is refused, not
    overwritten: frames extracted from its videos (the demo keeps them in ``root/frames``) would
    otherwise silently stay stale.
    """
    root = Path(root)
    marker = root / MARKER
    defaults = _GENERATOR_DEFAULTS
    unknown = set(kwargs) - set(defaults) - {"progress", "workers"}
    if unknown:
        raise TypeError(f"unknown demo video parameters: {sorted(unknown)}")
    settings = {k: v for k, v in kwargs.items() if k not in ("progress", "workers")}
    wanted = _params(**{**defaults, **settings})
    if marker.is_file():
        found = json.loads(marker.read_text())
        if found == wanted:
            classes = tuple(s.name for s in CLASS_SPECS[: int(wanted["num_classes"])])  # type: ignore[call-overload]
            return VideoDatasetPaths(root, root / "UCF-101", root / "ucfTrainTestlist", classes)
        version = found.get("generator_version", 1)
        why = (
            f"by demo video generator version {version}, this code writes version "
            f"{GENERATOR_VERSION}"
            if version != GENERATOR_VERSION
            else f"with {found}, not {wanted}"
        )
        raise DatasetError(
            f"{root} holds demo videos made {why}. Delete the folder (`rm -r {root}`: the "
            f"videos and the frames extracted from them) and rerun, or point the demo root "
            f"elsewhere (paths.data_cache)"
        )
    return generate_video_dataset(root, **kwargs)  # type: ignore[arg-type]
