"""Small server-side SVG charts for the console: lines, vertical bars and horizontal
(stacked) bars, with axis labels and a legend. No script and nothing from the internet:
each chart is an inline <svg> that prints and scales with the page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Distinguishable for most colour-blind readers (Okabe-Ito), then greys.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#999999")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Series:
    label: str
    values: list[int]
    color: str = ""


def colored(series: list[Series]) -> list[Series]:
    return [
        s if s.color else Series(s.label, s.values, PALETTE[n % len(PALETTE)])
        for n, s in enumerate(series)
    ]


def nice_top(value: float) -> tuple[float, float]:
    """A round top of the value axis and its step (4-5 gridlines)."""
    if value <= 0:
        return 4, 1
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    # counts: 2.5 only where it is a whole number
    steps = (1, 2, 2.5, 5, 10) if magnitude >= 10 else (1, 2, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw)
    step = max(step, 1)
    return math.ceil(value / step) * step, step


def number(value: float) -> str:
    """12345 -> «12 345» (a thin no-break space between thousands, as Russian prints)."""
    return f"{int(value):,}".replace(",", "\u202f")


def _text(x: float, y: float, content: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(content)}</text>'


def _legend(series: list[Series], x: float, y: float, width: float) -> tuple[str, float]:
    """Swatches with labels and totals, wrapped to `width`; (svg, height used)."""
    parts, cx, cy = [], x, y
    for s in series:
        label = f"{s.label}: {number(sum(s.values))}"
        w = 22 + 7.2 * len(label)
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 20
        parts.append(
            f'<rect x="{cx:.1f}" y="{cy - 10:.1f}" width="12" height="12" rx="2" fill="{s.color}"/>'
        )
        parts.append(_text(cx + 17, cy, label))
        cx += w + 14
    return "".join(parts), cy - y + 20


def _svg(width: float, height: float, title: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" width="100%" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" {FONT}>'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _value_axis(left: float, right: float, top: float, bottom: float, peak: float) -> tuple:
    """Gridlines with their numbers; (svg, scale: value -> y)."""
    high, step = nice_top(peak)
    parts = []
    level = 0.0
    while level <= high + 1e-9:
        y = bottom - (bottom - top) * level / high
        parts.append(
            f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#555" if level == 0 else "#e2e2e2"}"/>'
        )
        parts.append(_text(left - 6, y + 4, number(level), "end", 'fill="#444"'))
        level += step
    return "".join(parts), lambda v: bottom - (bottom - top) * v / high


def _x_labels(labels: list[str], xs: list[float], y: float, most: int = 10) -> str:
    every = max(1, math.ceil(len(labels) / most))
    return "".join(
        _text(x, y, label, "middle", 'fill="#444"')
        for n, (x, label) in enumerate(zip(xs, labels, strict=True))
        if n % every == 0 or (n == len(labels) - 1 and n % every > every // 2)
    )


def line_chart(
    labels: list[str], series: list[Series], *, title: str, width: int = 760, height: int = 260
) -> Markup:
    """One line per series over the labels (days)."""
    series = colored(series)
    legend, legend_h = _legend(series, 56, 16, width - 70)
    top, bottom, left, right = 16 + legend_h, height - 28, 56, width - 14
    peak = max((v for s in series for v in s.values), default=0)
    axis, scale = _value_axis(left, right, top, bottom, peak)
    n = max(len(labels), 1)
    xs = [left + (right - left) * (i + 0.5) / n for i in range(len(labels))]
    parts = [legend, axis, _x_labels(labels, xs, height - 8)]
    for s in series:
        points = " ".join(f"{x:.1f},{scale(v):.1f}" for x, v in zip(xs, s.values, strict=True))
        parts.append(
            f'<polyline fill="none" stroke="{s.color}" stroke-width="2" '
            f'stroke-linejoin="round" points="{points}"/>'
        )
        if len(labels) <= 45:
            parts.extend(
                f'<circle cx="{x:.1f}" cy="{scale(v):.1f}" r="2.5" fill="{s.color}">'
                f"<title>{escape(label)}: {escape(s.label)} {number(v)}</title></circle>"
                for x, v, label in zip(xs, s.values, labels, strict=True)
            )
    return _svg(width, height, title, "".join(parts))


def bar_chart(
    labels: list[str],
    series: list[Series],
    *,
    title: str,
    width: int = 760,
    height: int = 240,
    legend: bool = True,
) -> Markup:
    """Vertical bars, stacked when there are several series; the total over each bar when
    the bars are few enough to read it."""
    series = colored(series)
    legend_svg, legend_h = _legend(series, 56, 16, width - 70) if legend else ("", 0)
    top, bottom, left, right = 16 + legend_h + 10, height - 28, 56, width - 14
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    axis, scale = _value_axis(left, right, top, bottom, max(totals, default=0))
    n = max(len(labels), 1)
    slot = (right - left) / n
    bar = max(min(slot * 0.7, 90), 1)
    xs = [left + slot * (i + 0.5) for i in range(len(labels))]
    parts = [legend_svg, axis, _x_labels(labels, xs, height - 8, most=12)]
    for i, x in enumerate(xs):
        base = 0
        for s in series:
            value = s.values[i]
            if value:
                y0, y1 = scale(base), scale(base + value)
                parts.append(
                    f'<rect x="{x - bar / 2:.1f}" y="{y1:.1f}" width="{bar:.1f}" '
                    f'height="{max(y0 - y1, 0.5):.1f}" fill="{s.color}">'
                    f"<title>{escape(labels[i])}: {escape(s.label)} {number(value)}</title></rect>"
                )
            base += value
        if n <= 16:
            parts.append(
                _text(x, scale(totals[i]) - 5, number(totals[i]), "middle", 'font-weight="600"')
            )
    return _svg(width, height, title, "".join(parts))


def hbar_chart(
    labels: list[str],
    series: list[Series],
    *,
    title: str,
    width: int = 760,
    label_width: int = 230,
    legend: bool = True,
) -> Markup:
    """Horizontal bars, one row per label (long names fit), stacked by series, with the
    row's total at its end."""
    series = colored(series)
    legend_svg, legend_h = _legend(series, 8, 16, width - 16) if legend else ("", 0)
    row = 26
    top = 16 + legend_h + (4 if legend else -8)
    left, right = label_width, width - 70
    height = top + row * max(len(labels), 1) + 8
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    peak = max(totals, default=0) or 1
    parts = [legend_svg]
    for i, label in enumerate(labels):
        y = top + row * i
        fits = int((left - 14) / 6.6)
        shown = label if len(label) <= fits else label[: fits - 1].rstrip() + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{escape(shown)}'
            f"<title>{escape(label)}</title></text>"
        )
        x = float(left)
        for s in series:
            value = s.values[i]
            if value:
                w = (right - left) * value / peak
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 4}" width="{max(w, 0.5):.1f}" height="{row - 8}" '
                    f'fill="{s.color}"><title>{escape(label)}: {escape(s.label)} '
                    f"{number(value)}</title></rect>"
                )
                x += w
        parts.append(_text(x + 6, y + 17, number(totals[i]), extra='font-weight="600"'))
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - 8}" stroke="#555"/>')
    return _svg(width, height, title, "".join(parts))
