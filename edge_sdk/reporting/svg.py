"""How are the report's plots drawn? As hand-written inline SVG.

matplotlib is not a dependency of edge-sdk and would add ~40 MB for three charts; SVG written here keeps
report.html one self-contained file that renders with no network, scales crisply, and stays diffable text. Text
widths are estimated (no font metrics), so labels get generous margins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

VERDICT_COLORS = {"runs_as_is": "#2e7d32", "runs_with_plan": "#e08e0b", "cannot_run": "#c62828"}
MEASURED_COLOR = "#1f2937"
USABLE_COLOR = "#d7dde5"
FONT = "font-family='Inter,Segoe UI,Helvetica,Arial,sans-serif'"
CHAR_W = 6.4  # px per character at 11px, a safe over-estimate for sans fonts


def _fmt(v: float, unit: str = "") -> str:
    if v >= 100:
        s = f"{v:,.0f}"
    elif v >= 10:
        s = f"{v:.1f}"
    elif v >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3g}"
    return f"{s}{unit}"


def fmt_mb(mb: float) -> str:
    """Sizes people can read at any scale: a sub-MB model is "312 kB", never "0 MB"."""
    if mb >= 1000:
        return f"{mb / 1000:.1f} GB"
    if mb >= 10:
        return f"{mb:.0f} MB"
    if mb >= 1:
        return f"{mb:.1f} MB"
    return f"{mb * 1000:.0f} kB"


def _tick(v: float, unit: str = "") -> str:
    """Axis labels at powers of ten: 0.1, 1, 10, 100 (no trailing zeros)."""
    return f"{v:g}{unit}"


def _tick_mb(mb: float) -> str:
    return f"{mb / 1000:g} GB" if mb >= 1000 else f"{mb:g} MB"


def _nice_max(v: float) -> float:
    """Smallest 1/2/2.5/5 x 10^k at or above v."""
    k = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * k >= v:
            return m * k
    return 10 * k


class LogAxis:
    """Maps [lo, hi] (decades around the data) onto [x0, x1] pixels."""

    def __init__(self, values: list[float], x0: float, x1: float):
        vals = [v for v in values if v and v > 0] or [1.0]
        self.lo = 10 ** math.floor(math.log10(min(vals)))
        self.hi = 10 ** math.ceil(math.log10(max(vals)))
        if self.hi <= self.lo:
            self.hi = self.lo * 10
        self.x0, self.x1 = x0, x1

    def __call__(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)
        f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return self.x0 + f * (self.x1 - self.x0)

    def ticks(self) -> list[float]:
        out, t = [], self.lo
        while t <= self.hi * 1.0001:
            out.append(t)
            t *= 10
        return out


def _svg(width: float, height: float, body: list[str], title: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width:.0f} {height:.0f}' width='100%' "
            f"role='img' aria-label='{escape(title)}' {FONT} font-size='11'>" + "".join(body) + "</svg>")


def _grid(axis: LogAxis, top: float, bottom: float, fmt) -> list[str]:
    out = []
    for t in axis.ticks():
        x = axis(t)
        out.append(f"<line x1='{x:.1f}' y1='{top:.1f}' x2='{x:.1f}' y2='{bottom:.1f}' stroke='#e5e7eb'/>")
        out.append(f"<text x='{x:.1f}' y='{bottom + 14:.1f}' text-anchor='middle' fill='#6b7280'>{fmt(t)}</text>")
        for k in (2, 5):  # minor ticks
            m = t * k
            if m < axis.hi:
                xm = axis(m)
                out.append(f"<line x1='{xm:.1f}' y1='{bottom - 4:.1f}' x2='{xm:.1f}' y2='{bottom:.1f}' "
                           f"stroke='#cbd5e1'/>")
    return out


@dataclass
class LatencyRow:
    device: str
    verdict: str
    predicted_ms: float | None
    measured_ms: list[float]
    plan: str


def latency_chart(rows: list[LatencyRow]) -> str:
    """Horizontal bars on a log axis: predicted latency of each device's best plan (P), measured p50s (M)."""
    label_w = max((len(r.device) for r in rows), default=8) * CHAR_W + 16
    width, row_h, top = 720.0, 22.0, 34.0
    right = 150.0
    height = top + row_h * len(rows) + 58
    vals = [r.predicted_ms for r in rows if r.predicted_ms] + [m for r in rows for m in r.measured_ms]
    axis = LogAxis(vals, label_w, width - right)
    body = ["<text x='0' y='14' font-size='13' font-weight='600' fill='#111827'>Latency per device "
            "<tspan font-weight='400' fill='#6b7280'>(ms, log scale; bar = predicted P, "
            "\u25c6 = measured M)</tspan></text>"]
    body += _grid(axis, top - 6, top + row_h * len(rows), _tick)
    for i, r in enumerate(rows):
        y = top + i * row_h
        body.append(f"<text x='{label_w - 8:.1f}' y='{y + 14:.1f}' text-anchor='end' fill='#111827'>"
                    f"{escape(r.device)}</text>")
        if r.predicted_ms:
            x = axis(r.predicted_ms)
            color = VERDICT_COLORS.get(r.verdict, "#6b7280")
            body.append(f"<rect x='{label_w:.1f}' y='{y + 4:.1f}' width='{max(x - label_w, 1.5):.1f}' height='13' "
                        f"rx='2' fill='{color}' fill-opacity='0.85'><title>{escape(r.device)}: "
                        f"{escape(r.plan)} — predicted {_fmt(r.predicted_ms, ' ms')}</title></rect>")
            text = f"P {_fmt(r.predicted_ms, ' ms')}"
        else:
            text = "no plan"
            body.append(f"<text x='{label_w + 4:.1f}' y='{y + 14:.1f}' fill='#c62828' font-style='italic'>"
                        f"cannot run</text>")
        for m in r.measured_ms:
            xm = axis(m)
            body.append(f"<path d='M{xm:.1f},{y + 3:.1f} l5,7.5 l-5,7.5 l-5,-7.5 z' fill='{MEASURED_COLOR}' "
                        f"stroke='white' stroke-width='1'><title>measured p50 {_fmt(m, ' ms')}</title></path>")
        if r.measured_ms:
            text += f" · M {_fmt(min(r.measured_ms), ' ms')}"
        body.append(f"<text x='{width - right + 8:.1f}' y='{y + 14:.1f}' fill='#374151'>{escape(text)}</text>")
    ly = top + row_h * len(rows) + 36
    x = label_w
    for verdict, text in (("runs_as_is", "runs as is"), ("runs_with_plan", "runs with a plan"),
                          ("cannot_run", "cannot run (its best plan shown)")):
        body.append(f"<rect x='{x:.1f}' y='{ly - 9:.1f}' width='10' height='10' rx='2' "
                    f"fill='{VERDICT_COLORS[verdict]}'/><text x='{x + 14:.1f}' y='{ly:.1f}' fill='#374151'>"
                    f"{text}</text>")
        x += 14 + len(text) * CHAR_W + 18
    return _svg(width, height, body, "Latency per device")


@dataclass
class MemoryRow:
    device: str
    needed_mb: float | None
    usable_mb: float
    fits: bool | None
    per_device: bool


def memory_chart(rows: list[MemoryRow]) -> str:
    """Usable memory (grey) vs what the best plan needs (coloured), per device, log scale."""
    label_w = max((len(r.device) for r in rows), default=8) * CHAR_W + 16
    width, row_h, top = 720.0, 22.0, 34.0
    right = 150.0
    height = top + row_h * len(rows) + 40
    vals = [r.usable_mb for r in rows] + [r.needed_mb for r in rows if r.needed_mb]
    axis = LogAxis(vals, label_w, width - right)
    body = ["<text x='0' y='14' font-size='13' font-weight='600' fill='#111827'>Memory fit per device "
            "<tspan font-weight='400' fill='#6b7280'>(log scale; grey = usable, bar = needed by the plan, P)"
            "</tspan></text>"]
    body += _grid(axis, top - 6, top + row_h * len(rows), _tick_mb)
    for i, r in enumerate(rows):
        y = top + i * row_h
        body.append(f"<text x='{label_w - 8:.1f}' y='{y + 14:.1f}' text-anchor='end' fill='#111827'>"
                    f"{escape(r.device)}</text>")
        xu = axis(r.usable_mb)
        body.append(f"<rect x='{label_w:.1f}' y='{y + 2:.1f}' width='{max(xu - label_w, 1.5):.1f}' height='17' "
                    f"rx='2' fill='{USABLE_COLOR}'><title>usable {fmt_mb(r.usable_mb)}</title></rect>")
        body.append(f"<line x1='{xu:.1f}' y1='{y + 1:.1f}' x2='{xu:.1f}' y2='{y + 20:.1f}' stroke='#64748b' "
                    f"stroke-width='2'/>")
        if r.needed_mb:
            xn = axis(r.needed_mb)
            color = "#2e7d32" if r.fits else "#c62828"
            body.append(f"<rect x='{label_w:.1f}' y='{y + 7:.1f}' width='{max(xn - label_w, 1.5):.1f}' height='7' "
                        f"rx='1.5' fill='{color}'><title>needs {fmt_mb(r.needed_mb)}</title></rect>")
            pct = 100 * r.needed_mb / r.usable_mb
            text = f"{fmt_mb(r.needed_mb)} / {fmt_mb(r.usable_mb)} ({pct:.0f}%)"
            if r.per_device:
                text += " per GPU"
        else:
            text = f"? / {fmt_mb(r.usable_mb)}"
        body.append(f"<text x='{width - right + 8:.1f}' y='{y + 14:.1f}' "
                    f"fill='{'#374151' if r.fits is not False else '#c62828'}'>{escape(text)}</text>")
    return _svg(width, height, body, "Memory fit per device")


@dataclass
class ParetoPointRow:
    label: str
    latency_ms: float
    drop: float
    size_mb: float
    best: bool


def pareto_chart(points: list[ParetoPointRow], device: str) -> str:
    """Latency vs estimated quality loss of the planner's Pareto front for one device (all predictions)."""
    width, height = 720.0, 360.0
    left, right, top, bottom = 64.0, 40.0, 34.0, 44.0
    body = [f"<text x='0' y='14' font-size='13' font-weight='600' fill='#111827'>Latency–quality Pareto front: "
            f"{escape(device)} <tspan font-weight='400' fill='#6b7280'>(P; dot area = artifact size)</tspan></text>"]
    if not points:
        body.append(f"<text x='{left}' y='{top + 40}' fill='#6b7280'>no feasible plan on {escape(device)}</text>")
        return _svg(width, 120, body, "Pareto front")
    axis = LogAxis([p.latency_ms for p in points], left, width - right)
    ymax = _nice_max(max(max(p.drop for p in points) * 1.15, 0.002))
    y0, y1 = top, height - bottom

    def ypix(d: float) -> float:
        return y0 + (d / ymax) * (y1 - y0)  # 0 drop at the top: better is up and to the left

    body += _grid(axis, y0, y1, lambda t: _tick(t, " ms"))
    for k in range(5):
        d = ymax * k / 4
        yy = ypix(d)
        body.append(f"<line x1='{left}' y1='{yy:.1f}' x2='{width - right:.1f}' y2='{yy:.1f}' stroke='#f1f5f9'/>")
        body.append(f"<text x='{left - 6}' y='{yy + 4:.1f}' text-anchor='end' fill='#6b7280'>{d:.4g}</text>")
    body.append(f"<text x='14' y='{(y0 + y1) / 2:.1f}' transform='rotate(-90 14 {(y0 + y1) / 2:.1f})' "
                f"text-anchor='middle' fill='#374151'>est. cosine drop (lower is better)</text>")
    body.append(f"<text x='{(left + width - right) / 2:.1f}' y='{height - 6:.1f}' text-anchor='middle' "
                f"fill='#374151'>predicted latency, ms (log)</text>")
    pts = sorted(points, key=lambda p: p.latency_ms)
    path = " ".join(f"{'M' if i == 0 else 'L'}{axis(p.latency_ms):.1f},{ypix(p.drop):.1f}" for i, p in enumerate(pts))
    body.append(f"<path d='{path}' fill='none' stroke='#94a3b8' stroke-dasharray='4 3'/>")
    smax = max(p.size_mb for p in pts) or 1.0
    for i, p in enumerate(pts):
        x, y = axis(p.latency_ms), ypix(p.drop)
        r = 4 + 8 * math.sqrt(p.size_mb / smax)
        color = "#1d4ed8" if p.best else "#60a5fa"
        body.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{r:.1f}' fill='{color}' fill-opacity='0.75' "
                    f"stroke='{'#111827' if p.best else 'white'}' stroke-width='{1.5 if p.best else 1}'>"
                    f"<title>{escape(p.label)}: {_fmt(p.latency_ms, ' ms')}, {fmt_mb(p.size_mb)}, "
                    f"est. drop {p.drop:.3f}</title></circle>")
        label = ("★ " if p.best else "") + p.label
        dy = -r - 4 if i % 2 == 0 else r + 12
        anchor = "end" if x + len(label) * 6 > width - 4 else "start"
        body.append(f"<text x='{x + (2 if anchor == 'start' else -2):.1f}' y='{y + dy:.1f}' text-anchor='{anchor}' "
                    f"fill='#1f2937' font-size='10'>{escape(label)}</text>")
    return _svg(width, height, body, "Pareto front")
