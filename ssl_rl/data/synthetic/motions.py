"""The kinds of motion of the demo videos: per-frame pose of one object, each with an arrow of time.

A motion maps normalised time ``t`` (0 … 1 over the clip), a generator, the frame size and the
object's base radius to a :class:`Trajectory`. How far and how fast the object goes is drawn
per clip (the clip's "speed"); what kind of path, turn or deformation it follows is the class.
Periodic motions are damped, so that a shuffled clip still has one right order. Objects that do
not turn stand upright within ±25 degrees, as in the demo's still images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trajectory:
    """Per frame: centre (px), scale (× base radius), angle (rad, + is clockwise) and stretch
    (width ÷ height of the object, area kept)."""

    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray
    angle: np.ndarray
    stretch: np.ndarray


Motion = Callable[[np.ndarray, np.random.Generator, int, int, float], Trajectory]


def _constant(t: np.ndarray, value: float) -> np.ndarray:
    return np.full_like(t, value)


def _pose(
    t: np.ndarray,
    x: np.ndarray | float,
    y: np.ndarray | float,
    scale: np.ndarray | float = 1.0,
    angle: np.ndarray | float = 0.0,
    stretch: np.ndarray | float = 1.0,
) -> Trajectory:
    def full(value: np.ndarray | float) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=float), t.shape).copy()

    return Trajectory(full(x), full(y), full(scale), full(angle), full(stretch))


def _upright(rng: np.random.Generator) -> float:
    return float(np.deg2rad(rng.uniform(-25.0, 25.0)))


def _free_position(rng: np.random.Generator, w: int, h: int, margin: float) -> tuple[float, float]:
    return rng.uniform(margin, max(margin, w - margin)), rng.uniform(
        margin, max(margin, h - margin)
    )


def linear_move(direction: tuple[float, float]) -> Motion:
    """Constant velocity along ``direction``, covering 40-75 % of the frame."""

    def motion(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
        dx, dy = np.array(direction) / np.hypot(*direction)
        travel = rng.uniform(0.4, 0.75) * (w if abs(dx) >= abs(dy) else h)
        span_x, span_y = abs(dx) * travel, abs(dy) * travel
        x0 = rng.uniform(r, max(r, w - r - span_x))
        y0 = rng.uniform(r, max(r, h - r - span_y))
        x = (x0 + span_x * t) if dx >= 0 else (w - x0 - span_x * t)
        y = (y0 + span_y * t) if dy >= 0 else (h - y0 - span_y * t)
        return _pose(t, x, y, angle=_upright(rng))

    return motion


def fall(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
    """Dropped from rest: accelerates downwards, tumbling a little."""
    drop = rng.uniform(0.45, 0.75) * h
    y0 = rng.uniform(r * 0.5, max(r * 0.5, h - r - drop))
    x = rng.uniform(r, w - r)
    spin = rng.uniform(-0.6, 0.6) * t**2
    return _pose(t, x, y0 + drop * t**2, angle=_upright(rng) + spin)


def scale_change(start: tuple[float, float], end: tuple[float, float]) -> Motion:
    """Grows or shrinks in place, the same relative change every frame."""

    def motion(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
        s0, s1 = rng.uniform(*start), rng.uniform(*end)
        x, y = _free_position(rng, w, h, r * max(s0, s1) * 0.8)
        return _pose(t, x, y, scale=s0 * (s1 / s0) ** t, angle=_upright(rng))

    return motion


def rotate(sign: float) -> Motion:
    """Spins in place by 160-280 degrees (less than a turn, so the order stays unambiguous)."""

    def motion(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
        x, y = _free_position(rng, w, h, r * 1.4)
        total = np.deg2rad(rng.uniform(160, 280))
        return _pose(t, x, y, scale=1.2, angle=rng.uniform(0, 2 * np.pi) + sign * total * t)

    return motion


def bounce(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
    """Dropped on the floor, bouncing lower each time (periodic, damped) while drifting right."""
    floor = h - r - 1.0
    y, velocity = rng.uniform(r, max(r, 0.35 * h)), 0.0
    gravity = 2.0 * (floor - y) / rng.uniform(0.22, 0.35) ** 2  # first impact at ~30 %
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
    travel = rng.uniform(0.2, 0.5) * w
    x0 = rng.uniform(r, max(r, w - r - travel))
    return _pose(t, x0 + travel * t, np.array(heights), angle=_upright(rng))


def orbit(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
    """Counter-clockwise (on screen) along 200-300 degrees of a circle."""
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h
    radius = rng.uniform(0.22, 0.3) * h
    theta = rng.uniform(0, 2 * np.pi) - np.deg2rad(rng.uniform(200, 300)) * t
    x, y = cx + radius * np.cos(theta), cy + radius * np.sin(theta)
    return _pose(t, x, y, angle=_upright(rng))


def swing(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
    """A pendulum hanging from a point above the frame: 1.2-2 damped swings, turning with it
    (the object's bottom towards the pivot)."""
    length = rng.uniform(0.55, 0.7) * h
    pivot_x, pivot_y = rng.uniform(0.35, 0.65) * w, rng.uniform(0.05, 0.2) * h - 0.3 * length
    amplitude = np.deg2rad(rng.uniform(35, 55)) * np.exp(-rng.uniform(1.2, 2.0) * t)
    theta = amplitude * np.cos(2 * np.pi * rng.uniform(1.2, 2.0) * t + rng.uniform(-0.5, 0.5))
    x, y = pivot_x + length * np.sin(theta), pivot_y + length * np.cos(theta)
    return _pose(t, x, y, angle=np.pi - theta + rng.uniform(-0.2, 0.2))


def squash(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
    """Flattens under a weight: ever wider and lower, its base resting on one line."""
    final = rng.uniform(2.0, 3.0)  # width ÷ height at the end
    stretch = final**t
    x = rng.uniform(r * np.sqrt(final), max(r * np.sqrt(final), w - r * np.sqrt(final)))
    base = rng.uniform(0.6, 0.85) * h
    y = base - r / np.sqrt(stretch)  # the bottom edge stays put
    return _pose(t, x, y, angle=rng.uniform(-0.25, 0.25), stretch=stretch)


def roll(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
    """Rolls to the right along a floor: turning clockwise by the distance it covers."""
    travel = rng.uniform(0.4, 0.7) * w
    x0 = rng.uniform(r, max(r, w - r - travel))
    y = h - r * rng.uniform(1.1, 1.6)
    return _pose(t, x0 + travel * t, y, angle=rng.uniform(0, 2 * np.pi) + 0.8 * travel * t / r)


def zigzag(t: np.ndarray, rng: np.random.Generator, w: int, h: int, r: float) -> Trajectory:
    """Moves right while going up and down along 1.5-2.5 straight zigzags."""
    travel = rng.uniform(0.45, 0.7) * w
    x0 = rng.uniform(r, max(r, w - r - travel))
    amplitude = rng.uniform(0.2, 0.3) * h
    phase = 2 * rng.uniform(1.5, 2.5) * t + rng.uniform(0, 1)
    triangle = 2 * np.abs(phase % 2 - 1) - 1  # -1 … 1
    y = h / 2 + rng.uniform(-0.05, 0.05) * h + amplitude * triangle
    return _pose(t, x0 + travel * t, y, angle=_upright(rng))
