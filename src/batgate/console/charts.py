"""Line charts as SVG, drawn on the server: no chart library, no script. Pure.

A chart is a few series of counts over the same slices of time; each becomes a
polyline (and a dot per point, titled with its value, for the curious mouse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css: str  # the class that colours it (console.css)
    values: Sequence[int]


def line_chart(labels: Sequence[str], series: Sequence[Series], title: str) -> str:
    """An SVG of the series over the labels (one label per slice; a few are shown)."""
    slices = max(1, len(labels))
    top = max([1, *(v for s in series for v in s.values)])
    step = (WIDTH - LEFT - RIGHT) / max(1, slices - 1)
    height = HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + i * step

    def y(v: int) -> float:
        return TOP + height - height * v / top

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + height}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + height}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{top:,}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + height}" text-anchor="end">0</text>',
    ]
    for i in _label_positions(slices):
        parts.append(
            f'<text class="tick" x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
            f"{escape(labels[i])}</text>"
        )
    for s in series:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
        parts.append(
            f'<polyline class="line {s.css}" data-series="{escape(s.name)}" points="{points}"/>'
        )
        for i, v in enumerate(s.values):
            if v:
                parts.append(
                    f'<circle class="dot {s.css}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5">'
                    f"<title>{escape(s.name)} {escape(labels[i])}: {v:,}</title></circle>"
                )
    parts.append("</svg>")
    return "".join(parts)


def _label_positions(slices: int, shown: int = 6) -> list[int]:
    if slices <= shown:
        return list(range(slices))
    every = (slices - 1) / (shown - 1)
    return sorted({round(k * every) for k in range(shown)})


def series_of(
    slots: Sequence[int], counts: Mapping[tuple[int, str], int], names: Sequence[tuple[str, str]]
) -> list[Series]:
    """One Series per (status, css) of `names`, over `slots`, from counts by (slot, status)."""
    return [
        Series(status, css, [counts.get((slot, status), 0) for slot in slots])
        for status, css in names
    ]
