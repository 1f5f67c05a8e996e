"""Small server-rendered SVG charts (the templates draw them): no script, no CDN, and
nothing the Content-Security-Policy has to let in."""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    """A polyline's points in a `width` x `height` box."""

    points: str
    width: int
    height: int


def line(
    samples: Sequence[tuple[float, float]],
    *,
    window: float,
    top: float = 100.0,
    width: int = 120,
    height: int = 28,
) -> Line:
    """`samples`: (seconds into the window, value) in time order, values from 0 to `top`."""
    points = []
    for seconds, value in samples:
        x = width * min(max(seconds / window, 0.0), 1.0)
        y = height - height * min(max(value / top, 0.0), 1.0)
        points.append(f"{x:.1f},{y:.1f}")
    return Line(" ".join(points), width, height)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    height: float


@dataclass(frozen=True)
class Bars:
    bars: list[Bar]
    width: int
    height: int
    bar_width: float
    top: float


def bars(
    values: Sequence[tuple[str, float]], *, width: int = 480, height: int = 120, gap: float = 2.0
) -> Bars:
    """A bar per (label, value), scaled to the largest value."""
    top = max((value for _, value in values), default=0.0) or 1.0
    step = width / max(len(values), 1)
    drawn = []
    for index, (label, value) in enumerate(values):
        bar_height = height * value / top
        drawn.append(Bar(label, value, index * step + gap / 2, height - bar_height, bar_height))
    return Bars(drawn, width, height, max(step - gap, 1.0), top)
