"""The offline demo's stand-in for UCF-101: procedural action videos in the release's format.

``<root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` (MPEG-4 Part 2 in AVI, 25 fps, like UCF-101's
Xvid) and ``<root>/ucfTrainTestlist/`` (classInd.txt, trainlist0{1,2,3}.txt,
testlist0{1,2,3}.txt with CRLF endings). Each class is one object (shape, texture, colour family)
doing one motion with a clear arrow of time on a textured, slowly panning background, so the
frame order is learnable and classes differ both in motion and in single-frame appearance.
A group shares background, object colour and size (UCF-101's "same actor and scene"); clips of
a group vary start, speed, panning and noise. Splits follow the official group rule scaled
down: split k tests on the k-th block of round(7/25 · groups) groups; the last groups always
train. Everything is determined by ``seed``; a marker written last (with the parameters and
``GENERATOR_VERSION``) makes it idempotent.

The objects are large (a fifth of the frame height) and the background's contrast is low, so
the motion survives the temporal task's small frames (36 px, a 1×1 pool5 in the demo trunk);
with smaller objects on a busier background the demo's order task stayed at chance.
"""

from __future__ import annotations

import colorsys
import inspect
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ssl_rl.data.errors import DatasetError
from ssl_rl.data.video_io import write_avi

logger = logging.getLogger(__name__)

MARKER = ".ssl_rl_complete.json"
# Bump whenever the rendered content changes: a cache made by another version is refused.
# 2: objects 0.20-0.25 (was 0.13-0.17) of the height, background contrast about halved.
GENERATOR_VERSION = 2
FPS = 25


@dataclass(frozen=True)
class VideoDatasetPaths:
    """Where a generated dataset lives, in the layout the UCF-101 reader expects."""

    root: Path
    video_root: Path
    split_dir: Path
    classes: tuple[str, ...]


@dataclass(frozen=True)
class _Trajectory:
    """Per-frame object centre (px), scale (× base radius) and angle (rad, + is clockwise)."""

    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray
    angle: np.ndarray


_Motion = Callable[[np.ndarray, np.random.Generator, int, int, float], _Trajectory]


def _constant(t: np.ndarray, value: float) -> np.ndarray:
    return np.full_like(t, value)


def _linear_move(direction: tuple[float, float]) -> _Motion:
    """Constant velocity along ``direction``, covering 50-75 % of the frame."""

    def motion(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> _Trajectory:
        dx, dy = direction
        travel = rng.uniform(0.5, 0.75) * (w if abs(dx) >= abs(dy) else h)
        span_x, span_y = abs(dx) * travel, abs(dy) * travel
        x0 = rng.uniform(r, max(r, w - r - span_x))
        y0 = rng.uniform(r, max(r, h - r - span_y))
        x = (x0 + span_x * t) if dx >= 0 else (w - x0 - span_x * t)
        y = (y0 + span_y * t) if dy >= 0 else (h - y0 - span_y * t)
        wobble = rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * (t * 2 + rng.uniform()))
        if abs(dx) >= abs(dy):
            y = y + wobble
        else:
            x = x + wobble
        return _Trajectory(x, y, _constant(t, 1.0), _constant(t, rng.uniform(0, 2 * np.pi)))

    return motion


def _fall(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> _Trajectory:
    """Dropped from rest: accelerates downwards."""
    drop = rng.uniform(0.55, 0.75) * h
    y0 = rng.uniform(r * 0.5, max(r * 0.5, h - r - drop))
    x = _constant(t, rng.uniform(r, w - r))
    return _Trajectory(x, y0 + drop * t**2, _constant(t, 1.0), _constant(t, rng.uniform(0, 6.3)))


def _scale_change(start: tuple[float, float], end: tuple[float, float]) -> _Motion:
    def motion(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> _Trajectory:
        s0, s1 = rng.uniform(*start), rng.uniform(*end)
        margin = r * max(s0, s1) * 0.8
        x = _constant(t, rng.uniform(margin, max(margin, w - margin)))
        y = _constant(t, rng.uniform(margin, max(margin, h - margin)))
        scale = s0 * (s1 / s0) ** t  # geometric: the same relative change every frame
        return _Trajectory(x, y, scale, _constant(t, rng.uniform(0, 2 * np.pi)))

    return motion


def _rotate(sign: float) -> _Motion:
    """Spins by 200-280 degrees (less than a turn, so the order stays unambiguous)."""

    def motion(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> _Trajectory:
        margin = r * 1.4
        x = _constant(t, rng.uniform(margin, max(margin, w - margin)))
        y = _constant(t, rng.uniform(margin, max(margin, h - margin)))
        total = np.deg2rad(rng.uniform(200, 280))
        angle = rng.uniform(0, 2 * np.pi) + sign * total * t
        return _Trajectory(x, y, _constant(t, 1.3), angle)

    return motion


def _bounce(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> _Trajectory:
    """Dropped ball bouncing on the floor with damping while drifting left."""
    floor = h - r - 1.0
    y, velocity = rng.uniform(r, 0.35 * h), 0.0
    gravity = 2.0 * (floor - y) / rng.uniform(0.25, 0.35) ** 2  # first impact at ~30 %
    restitution = rng.uniform(0.55, 0.7)
    substeps, dt = 16, (t[1] - t[0]) / 16 if len(t) > 1 else 0.0
    heights = []
    for _ in t:
        heights.append(y)
        for _ in range(substeps):
            velocity += gravity * dt
            y += velocity * dt
            if y > floor:
                y, velocity = 2 * floor - y, -restitution * velocity
    travel = rng.uniform(0.3, 0.5) * w
    x0 = rng.uniform(r + travel, max(r + travel, w - r))
    return _Trajectory(x0 - travel * t, np.array(heights), _constant(t, 1.0), _constant(t, 0.0))


def _orbit(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> _Trajectory:
    """Counter-clockwise (on screen) along 240-300 degrees of a circle."""
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h
    radius = rng.uniform(0.25, 0.32) * h
    theta = rng.uniform(0, 2 * np.pi) - np.deg2rad(rng.uniform(240, 300)) * t
    angle = _constant(t, rng.uniform(0, 2 * np.pi))
    return _Trajectory(
        cx + radius * np.cos(theta), cy + radius * np.sin(theta), _constant(t, 1.0), angle
    )


@dataclass(frozen=True)
class _ClassSpec:
    name: str
    shape: str
    texture: str
    hue: float
    motion: _Motion


# Hues 30 degrees apart, ordered so that any prefix of the list is well spread.
CLASS_SPECS: tuple[_ClassSpec, ...] = (
    _ClassSpec("MoveRight", "triangle", "solid", 0 / 12, _linear_move((1, 0))),
    _ClassSpec("MoveLeft", "square", "stripes", 6 / 12, _linear_move((-1, 0))),
    _ClassSpec("MoveUp", "star", "solid", 3 / 12, _linear_move((0, -1))),
    _ClassSpec("FallDown", "diamond", "checker", 9 / 12, _fall),
    _ClassSpec("Grow", "hexagon", "rings", 1 / 12, _scale_change((0.45, 0.6), (1.5, 1.8))),
    _ClassSpec("Shrink", "cross", "solid", 7 / 12, _scale_change((1.5, 1.8), (0.45, 0.6))),
    _ClassSpec("RotateClockwise", "pacman", "stripes", 4 / 12, _rotate(+1.0)),
    _ClassSpec("RotateCounterClockwise", "ell", "checker", 10 / 12, _rotate(-1.0)),
    _ClassSpec("BounceBall", "disk", "rings", 2 / 12, _bounce),
    _ClassSpec("Orbit", "ellipse", "gradient", 8 / 12, _orbit),
    _ClassSpec("MoveDown", "ring", "solid", 5 / 12, _linear_move((0, 1))),
    _ClassSpec("SlideDiagonal", "pentagon", "stripes", 11 / 12, _linear_move((0.7, -0.7))),
)


def _box(u: np.ndarray, v: np.ndarray, cu: float, cv: float, hu: float, hv: float) -> np.ndarray:
    qu, qv = np.abs(u - cu) - hu, np.abs(v - cv) - hv
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0)


def _polygon(radius: np.ndarray, angle: np.ndarray, sides: int, size: float) -> np.ndarray:
    sector = 2 * np.pi / sides
    local = np.mod(angle, sector) - sector / 2
    return radius * np.cos(local) - size * np.cos(np.pi / sides)


def _shape_distance(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (in object radii) to the outline; negative inside."""
    radius, angle = np.hypot(u, v), np.arctan2(v, u)
    if shape == "disk":
        return radius - 1.0
    if shape == "ring":
        return np.abs(radius - 0.72) - 0.3
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.85
    if shape == "diamond":
        return (np.abs(u) + np.abs(v)) / np.sqrt(2) - 0.8
    if shape in ("triangle", "pentagon", "hexagon"):
        sides = {"triangle": 3, "pentagon": 5, "hexagon": 6}[shape]
        return _polygon(radius, angle, sides, 1.2 if sides == 3 else 1.0)
    if shape == "star":
        return radius - (0.68 + 0.38 * np.cos(5 * angle))
    if shape == "cross":
        return np.minimum(_box(u, v, 0, 0, 1.0, 0.34), _box(u, v, 0, 0, 0.34, 1.0))
    if shape == "pacman":
        mouth = radius * np.sin(np.clip(0.6 - np.abs(angle), -np.pi / 2, np.pi / 2))
        return np.maximum(radius - 1.0, mouth)
    if shape == "ell":
        return np.minimum(_box(u, v, -0.45, 0.0, 0.3, 1.0), _box(u, v, 0.15, 0.7, 0.9, 0.3))
    if shape == "ellipse":
        return (np.hypot(u, v / 0.55) - 1.0) * 0.55
    raise ValueError(f"unknown shape {shape!r}")


def _texture(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Brightness pattern in [0, 1] fixed to the object (it moves and turns with it)."""
    if texture == "solid":
        return np.ones_like(u)
    if texture == "stripes":
        wave = np.sin(u * 2.2 * np.pi)
    elif texture == "checker":
        wave = np.sin(u * 2.0 * np.pi) * np.sin(v * 2.0 * np.pi) * 3
    elif texture == "rings":
        wave = np.sin(np.hypot(u, v) * 3.0 * np.pi)
    elif texture == "gradient":
        return np.clip((u + 1.0) / 2.0, 0.0, 1.0)
    else:
        raise ValueError(f"unknown texture {texture!r}")
    return 0.5 + 0.5 * np.tanh(3.0 * wave)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Low-saturation texture: smooth noise plus a faint grating, float RGB in [0, 1]."""
    coarse = rng.uniform(0, 1, (max(2, height // 12), max(2, width // 12))).astype(np.float32)
    smooth = np.asarray(
        Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BICUBIC)
    )
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, np.pi)
    grating = np.sin(
        (xs * np.cos(direction) + ys * np.sin(direction)) * 2 * np.pi / rng.uniform(6, 14)
    )
    luma = 0.3 + 0.2 * np.clip(smooth, 0, 1) + 0.03 * grating
    tint = rng.uniform(-0.08, 0.08, 3)
    return np.clip(luma[..., None] + tint, 0, 1).astype(np.float32)


def _hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), dtype=np.float32)


def _render_clip(
    spec: _ClassSpec,
    group_rng: np.random.Generator,
    clip_rng: np.random.Generator,
    num_frames: int,
    width: int,
    height: int,
) -> list[np.ndarray]:
    """The RGB uint8 frames of one clip."""
    # Shared by a group: the scene and the "actor".
    max_pan = 0.4
    pad = int(np.ceil(max_pan * num_frames)) + 2
    scenery = _background(group_rng, width + 2 * pad, height + 2 * pad)
    hue = spec.hue + group_rng.uniform(-0.03, 0.03)
    bright = _hsv(hue, group_rng.uniform(0.7, 1.0), group_rng.uniform(0.8, 1.0))
    dark = bright * group_rng.uniform(0.45, 0.6)
    base_radius = group_rng.uniform(0.2, 0.25) * height

    t = np.linspace(0.0, 1.0, num_frames)
    path = spec.motion(t, clip_rng, width, height, base_radius)
    pan_direction = clip_rng.uniform(0, 2 * np.pi)
    pan = clip_rng.uniform(0, max_pan) * np.arange(num_frames)
    noise_level = clip_rng.uniform(0.005, 0.015)
    frames = []
    for k in range(num_frames):
        left = pad + round(float(pan[k] * np.cos(pan_direction)))
        top = pad + round(float(pan[k] * np.sin(pan_direction)))
        image = scenery[top : top + height, left : left + width].copy()
        _paint_object(image, spec, path, k, base_radius, bright, dark)
        image += noise_level * clip_rng.standard_normal(image.shape, dtype=np.float32)
        frames.append((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    return frames


def _paint_object(
    image: np.ndarray,
    spec: _ClassSpec,
    path: _Trajectory,
    k: int,
    base_radius: float,
    bright: np.ndarray,
    dark: np.ndarray,
) -> None:
    """Composites the object of frame ``k`` into ``image`` (in place), antialiased."""
    height, width = image.shape[:2]
    radius = base_radius * path.scale[k]
    reach = 1.6 * radius + 2  # every shape lies within 1.5 radii of its centre
    x0, x1 = max(0, int(path.x[k] - reach)), min(width, int(path.x[k] + reach) + 1)
    y0, y1 = max(0, int(path.y[k] - reach)), min(height, int(path.y[k] + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return  # outside the frame
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    cos, sin = np.cos(path.angle[k]), np.sin(path.angle[k])
    du, dv = xs - path.x[k], ys - path.y[k]
    u, v = (cos * du + sin * dv) / radius, (-sin * du + cos * dv) / radius
    alpha = np.clip(0.5 - _shape_distance(spec.shape, u, v) * radius, 0.0, 1.0)[..., None]
    colour = dark + (bright - dark) * _texture(spec.texture, u, v)[..., None]
    patch = image[y0:y1, x0:x1]
    image[y0:y1, x0:x1] = patch * (1 - alpha) + colour * alpha


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
) -> VideoDatasetPaths:
    """Writes the dataset under ``root`` (overwriting its files); the marker comes last.

    ``num_frames`` is a length, or an inclusive (min, max) range drawn per clip.
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
    for class_index, group, clip in tqdm(
        jobs, desc="demo videos", unit="video", disable=not progress
    ):
        spec = specs[class_index]
        group_rng = np.random.default_rng([seed, class_index, group])
        clip_rng = np.random.default_rng([seed, class_index, group, clip])
        length = int(clip_rng.integers(lengths[0], lengths[1] + 1))
        frames = _render_clip(spec, group_rng, clip_rng, length, width, height)
        target = paths.video_root / spec.name / video_name(spec.name, group, clip)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        write_avi(partial, frames, fps=FPS)
        os.replace(partial, target)
    _write_split_lists(paths, specs, groups, clips_per_group, tests)
    (root / MARKER).write_text(json.dumps(params, sort_keys=True))
    logger.info("generated %d demo videos under %s", len(jobs), root)
    return paths


_GENERATOR_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(generate_video_dataset).parameters.items()
    if name not in ("root", "progress")
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
    unknown = set(kwargs) - set(defaults) - {"progress"}
    if unknown:
        raise TypeError(f"unknown demo video parameters: {sorted(unknown)}")
    wanted = _params(**{**defaults, **{k: v for k, v in kwargs.items() if k != "progress"}})
    if marker.is_file():
        found = json.loads(marker.read_text())
        if found == wanted:
            classes = tuple(s.name for s in CLASS_SPECS[: int(wanted["num_classes"])])  # type: ignore[call-overload]
            return VideoDatasetPaths(root, root / "UCF-101", root / "ucfTrainTestlist", classes)
        raise DatasetError(
            f"{root} holds demo videos generated with {found}, not {wanted}; delete the folder "
            f"(with any frames extracted from its videos) or point the demo root elsewhere"
        )
    return generate_video_dataset(root, **kwargs)  # type: ignore[arg-type]
