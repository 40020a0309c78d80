"""The movements chart's geometry: stacked bars per day, drawn as SVG by the dashboard's template.

The server draws it, so the page needs no script and loads nothing from
elsewhere. Coordinates are in the SVG's own units (`WIDTH` × `HEIGHT`); the
page scales the picture to its column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

WIDTH = 960
HEIGHT = 260
LEFT = 56  # room for the y axis' numbers
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the dates
BAR_SHARE = Decimal("0.72")  # of each day's slot; the rest is the gap between bars
LABEL_EVERY = 5  # days between two dates under the axis


@dataclass(frozen=True)
class Segment:
    kind: str
    y: str
    height: str
    count: int


@dataclass(frozen=True)
class Bar:
    day: date
    x: str
    width: str
    label_x: str
    total: int
    segments: list[Segment]
    label: str  # the date under the axis, or "" where none is written
    tooltip: str
    is_today: bool


@dataclass(frozen=True)
class Tick:
    y: str
    value: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    baseline: str
    bars: list[Bar]
    ticks: list[Tick]
    total: int
    busiest: Bar | None


def nice_ceiling(value: int) -> tuple[int, int]:
    """The top of the axis and the step between its lines: the smallest of 1, 2, 2.5 or 5 × 10ⁿ steps, four of
    which reach `value` (at least 1)."""
    target = max(value, 1)
    magnitude = 1
    while True:
        for multiple in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5)):
            step = multiple * magnitude
            if step == int(step) and step * 4 >= target:
                return int(step * 4), int(step)
        magnitude *= 10


def _coordinate(value: Decimal) -> str:
    return f"{value:.1f}"


def movements_chart(
    days: Sequence[date], counts: dict[date, Counter[str]], kinds: Sequence[tuple[str, str]], today: date
) -> Chart:
    """Bars for `days` (oldest first), each stacked in the order of `kinds` ((slug, name) pairs)."""
    plot_width = Decimal(WIDTH - LEFT - RIGHT)
    plot_height = Decimal(HEIGHT - TOP - BOTTOM)
    baseline = Decimal(HEIGHT - BOTTOM)
    totals = [sum(counts.get(day, Counter()).values()) for day in days]
    top, step = nice_ceiling(max(totals, default=0))
    slot = plot_width / max(len(days), 1)
    bar_width = slot * BAR_SHARE
    names = dict(kinds)

    bars = []
    for index, (day, total) in enumerate(zip(days, totals, strict=True)):
        x = LEFT + slot * index + (slot - bar_width) / 2
        day_counts = counts.get(day, Counter())
        segments, stacked = [], Decimal(0)
        for slug, _ in kinds:
            count = day_counts.get(slug, 0)
            if not count:
                continue
            height = plot_height * count / top
            segments.append(
                Segment(kind=slug, y=_coordinate(baseline - stacked - height), height=_coordinate(height), count=count)
            )
            stacked += height
        parts = ", ".join(f"{names[slug]} {day_counts[slug]:,}" for slug, _ in kinds if day_counts.get(slug))
        label_due = (len(days) - 1 - index) % LABEL_EVERY == 0
        bars.append(
            Bar(
                day=day,
                x=_coordinate(x),
                width=_coordinate(bar_width),
                label_x=_coordinate(x + bar_width / 2),
                total=total,
                segments=segments,
                label=f"{day:%b} {day.day}" if label_due else "",
                tooltip=f"{day.isoformat()}{' (today, so far)' if day == today else ''}: {total:,} movements"
                + (f" — {parts}" if parts else ""),
                is_today=day == today,
            )
        )
    ticks = [
        Tick(y=_coordinate(baseline - plot_height * value / top), value=value) for value in range(0, top + 1, step)
    ]
    busiest = max(bars, key=lambda bar: bar.total) if any(totals) else None
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        baseline=_coordinate(baseline),
        bars=bars,
        ticks=ticks,
        total=sum(totals),
        busiest=busiest,
    )
