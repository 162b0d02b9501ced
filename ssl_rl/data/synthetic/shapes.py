"""Object outlines of the demo's classes: simple shapes and objects made of parts.

A class of the ImageNet- and VOC-format demo sets is one outline, colour and surface pattern
drawn per instance; the demo videos move the same outlines (one per class, with its kind of
motion), as UCF-101's scenes show objects ImageNet has. Outlines are polygons in unit object
coordinates (y down, the object within about 1.1 of its centre); several polygons make an
object of parts, drawn in order, each filling (True) or cutting out (False). Objects of parts
differ by their layout (a disk on a stick, a top on two legs, a roof on a box), what the
jigsaw task has to learn to solve.
"""

from __future__ import annotations

import math

Polygon = list[tuple[float, float]]

# Ordered so that the first ten (the demo's) are as distinct as possible.
SHAPES = (
    "house",
    "lollipop",
    "star",
    "table",
    "crescent",
    "arrow",
    "snowman",
    "cross",
    "mushroom",
    "ring",
    "triangle",
    "tee",
    "square",
    "flag",
    "circle",
    "hourglass",
    "hexagon",
    "heart",
    "ellipse",
    "diamond",
)


def _circle(r: float, cx: float = 0.0, cy: float = 0.0, rx: float = 1.0) -> Polygon:
    steps = [2 * math.pi * k / 72 for k in range(72)]
    return [(cx + rx * r * math.cos(t), cy + r * math.sin(t)) for t in steps]


def _regular(n: int, r: float, phase: float) -> Polygon:
    return [
        (r * math.cos(phase + 2 * math.pi * i / n), r * math.sin(phase + 2 * math.pi * i / n))
        for i in range(n)
    ]


def _rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _star() -> Polygon:
    radii = [1.15, 0.5] * 5
    return [
        (r * math.cos(-math.pi / 2 + math.pi * i / 5), r * math.sin(-math.pi / 2 + math.pi * i / 5))
        for i, r in enumerate(radii)
    ]


def _heart() -> Polygon:
    points = []
    for k in range(72):
        t = 2 * math.pi * k / 72
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        points.append((x / 16.0, -y / 16.0 - 0.1))
    return points


def unit_polygons(shape: str) -> list[tuple[Polygon, bool]]:
    """The polygons of ``shape`` with True = fill, False = cut out, in drawing order."""
    if shape == "circle":
        return [(_circle(1.0), True)]
    if shape == "square":
        return [(_regular(4, 1.1, math.pi / 4), True)]
    if shape == "triangle":
        return [([(x, y + 0.2) for x, y in _regular(3, 1.25, -math.pi / 2)], True)]
    if shape == "star":
        return [(_star(), True)]
    if shape == "cross":
        a, b = 0.35, 1.0
        return [(_rect(-a, -b, a, b), True), (_rect(-b, -a, b, a), True)]
    if shape == "ring":
        return [(_circle(1.0), True), (_circle(0.55), False)]
    if shape == "ellipse":
        return [(_circle(0.6, rx=1.0 / 0.6), True)]
    if shape == "hexagon":
        return [(_regular(6, 1.05, 0.0), True)]
    if shape == "arrow":
        points = [(0.0, -1.1), (0.8, -0.2), (0.3, -0.2), (0.3, 1.0), (-0.3, 1.0), (-0.3, -0.2)]
        return [([*points, (-0.8, -0.2)], True)]
    if shape == "crescent":
        return [(_circle(1.0), True), (_circle(0.85, cx=0.45, cy=-0.15), False)]
    if shape == "diamond":
        return [([(0.0, -1.1), (0.75, 0.0), (0.0, 1.1), (-0.75, 0.0)], True)]
    if shape == "hourglass":
        points = [(-0.8, -1.0), (0.8, -1.0), (0.12, 0.0), (0.8, 1.0), (-0.8, 1.0), (-0.12, 0.0)]
        return [(points, True)]
    if shape == "heart":
        return [(_heart(), True)]
    # Objects of parts.
    if shape == "house":  # a box under a roof, with a door
        roof = [(-1.0, -0.1), (1.0, -0.1), (0.0, -1.05)]
        return [
            (_rect(-0.72, -0.1, 0.72, 1.0), True),
            (roof, True),
            (_rect(-0.2, 0.45, 0.2, 1.0), False),
        ]
    if shape == "lollipop":  # a disk on a stick
        return [(_circle(0.74, cy=-0.36), True), (_rect(-0.12, 0.3, 0.12, 1.1), True)]
    if shape == "table":  # a top on two legs
        return [
            (_rect(-1.05, -0.75, 1.05, -0.4), True),
            (_rect(-0.9, -0.45, -0.62, 0.95), True),
            (_rect(0.62, -0.45, 0.9, 0.95), True),
        ]
    if shape == "snowman":  # a small disk on a large one
        return [(_circle(0.74, cy=0.33), True), (_circle(0.45, cy=-0.68), True)]
    if shape == "mushroom":  # a half-disk cap on a stem
        cap = [(math.cos(t), -0.05 - math.sin(t)) for t in [math.pi * k / 36 for k in range(37)]]
        return [(cap, True), (_rect(-0.28, -0.1, 0.28, 0.95), True)]
    if shape == "tee":  # a bar across the top of a post
        return [(_rect(-1.0, -1.0, 1.0, -0.5), True), (_rect(-0.25, -0.55, 0.25, 1.0), True)]
    if shape == "flag":  # a cloth at the top of a pole
        return [(_rect(-0.92, -1.0, -0.75, 1.05), True), (_rect(-0.77, -1.0, 0.85, -0.1), True)]
    raise ValueError(f"unknown shape {shape!r}")
