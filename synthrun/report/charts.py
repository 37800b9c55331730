"""Charts as plain inline SVG strings (no JavaScript, no network, a few KB each).

Every piece of text placed in a chart goes through :func:`esc`, so a label taken from
data (a tool name, a drop reason) can never become markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
BAND_COLOURS = {"FAIL": "#fde0dd", "NEEDS_REVIEW": "#fff3c4", "PASS": "#dcf2dc"}
FONT = 'font-family="system-ui,sans-serif" font-size="11"'


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def fmt(v: float) -> str:
    """Short number: 1234 -> 1.2k, 0.1234 -> 0.123."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a == int(a):
        return str(int(v))
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while True:
        ticks.append(round(t, 10))
        if t >= hi - step * 1e-9:
            return ticks
        t += step


def _svg(w: int, h: int, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
            f'role="img" aria-label="{esc(label)}" {FONT}>' + "".join(body) + "</svg>")


def _text(x: float, y: float, s: object, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{esc(s)}</text>'


def _clip(s: object, n: int) -> str:
    s = str(s)
    return s if len(s) <= n else s[: n - 1] + "…"


def legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for name, colour in items:
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        out.append(_text(x + 14, y, _clip(name, 28)))
        x += 24 + 6.5 * min(len(name), 28)
    return out


def hbar_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], title: str,
               stacked: bool = True, width: int = 640, colours: Sequence[str] = PALETTE) -> str:
    """Horizontal bars, one row per label; several series stack (or sit side by side)."""
    row_h = 22 if stacked or len(series) == 1 else 12 * len(series) + 8
    left, right = min(200, 12 + 6.5 * max((len(str(x)) for x in labels), default=4)), 60
    top = 30 if len(series) == 1 else 44
    h = top + row_h * len(labels) + 28
    totals = [sum(s[1][i] for s in series) if stacked else max((s[1][i] for s in series), default=0)
              for i in range(len(labels))]
    vmax = max(totals, default=0) or 1
    ticks = nice_ticks(0, vmax)
    vmax = ticks[-1]
    plot_w = width - left - right
    body = [_text(4, 16, title, extra=' font-weight="bold" font-size="13"')]
    for t in ticks:
        x = left + plot_w * t / vmax
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{h - 24}" stroke="#ddd"/>')
        body.append(_text(x, h - 10, fmt(t), "middle"))
    for i, lab in enumerate(labels):
        y = top + i * row_h
        body.append(_text(left - 6, y + row_h / 2 + 4, _clip(lab, 30), "end"))
        x0 = 0.0
        for j, (name, values) in enumerate(series):
            v = float(values[i] or 0)
            bw = plot_w * v / vmax
            if stacked:
                bx, by, bh = left + plot_w * x0 / vmax, y + 3, row_h - 6
                x0 += v
            else:
                bx, by, bh = left, y + 4 + j * 12, 10
            body.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{max(bw, 0):.1f}" height="{bh}" '
                        f'fill="{colours[j % len(colours)]}"><title>{esc(lab)} · {esc(name)}: {esc(fmt(v))}'
                        f'</title></rect>')
        body.append(_text(left + plot_w * totals[i] / vmax + 4, y + row_h / 2 + 4, fmt(totals[i])))
    if len(series) > 1:
        body += legend([(s[0], colours[j % len(colours)]) for j, s in enumerate(series)], left, 34)
    return _svg(width, h, body, title)


def histogram(bins: Sequence[tuple[float, float, int]], title: str, threshold: float | None = None,
              bands: dict[str, tuple[float, float]] | None = None, width: int = 420, height: int = 220) -> str:
    """Counts per bin ``(lo, hi, count)``, with optional coloured bands and a threshold line."""
    left, right, top, bottom = 40, 12, 28, 34
    pw, ph = width - left - right, height - top - bottom
    centres = [(a + b) / 2 for a, b, _ in bins]
    integer = bool(bins) and all(b - a == 1 and float(c).is_integer() for (a, b, _), c in zip(bins, centres, strict=True))

    def edge(v: float) -> float:  # integer scores: a cut at t keeps the whole bin of t
        return math.ceil(v - 1e-9) - 0.5 if integer and abs(v) < 1e8 else v

    label = threshold
    if threshold is not None:
        threshold = edge(threshold)
    bands = {k: (edge(a), edge(b)) for k, (a, b) in (bands or {}).items()}
    lo = min((b[0] for b in bins), default=0.0)
    hi = max((b[1] for b in bins), default=1.0)
    if threshold is not None:
        lo, hi = min(lo, threshold), max(hi, threshold)
    span = (hi - lo) or 1.0
    cmax = max((b[2] for b in bins), default=0) or 1
    yt = nice_ticks(0, cmax, 4)
    cmax = yt[-1]

    def sx(v: float) -> float:
        return left + pw * (v - lo) / span

    body = [_text(4, 16, title, extra=' font-weight="bold" font-size="13"')]
    for name, (a, b) in bands.items():
        a, b = max(a, lo), min(b, hi)
        if b > a:
            body.append(f'<rect x="{sx(a):.1f}" y="{top}" width="{sx(b) - sx(a):.1f}" height="{ph}" '
                        f'fill="{BAND_COLOURS.get(name, "#eee")}"><title>{esc(name)}</title></rect>')
            body.append(_text((sx(a) + sx(b)) / 2, top + 11, name, "middle", ' fill="#666" font-size="9"'))
    for t in yt:
        y = top + ph - ph * t / cmax
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        body.append(_text(left - 4, y + 4, fmt(t), "end"))
    for a, b, c in bins:
        bh = ph * c / cmax
        body.append(f'<rect x="{sx(a) + 1:.1f}" y="{top + ph - bh:.1f}" width="{max(sx(b) - sx(a) - 2, 1):.1f}" '
                    f'height="{bh:.1f}" fill="{PALETTE[0]}"><title>[{esc(fmt(a))}, {esc(fmt(b))}): {c}</title></rect>')
    x_ticks = centres if integer and len(centres) <= 15 else nice_ticks(lo, hi, 6)
    for t in x_ticks:
        if lo - 1e-9 <= t <= hi + 1e-9:
            body.append(_text(sx(t), height - bottom + 14, fmt(t), "middle"))
    body.append(f'<line x1="{left}" y1="{top + ph}" x2="{width - right}" y2="{top + ph}" stroke="#888"/>')
    if threshold is not None:
        x = sx(threshold)
        body.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + ph}" stroke="#d62728" '
                    f'stroke-width="2" stroke-dasharray="5,3"/>')
        body.append(_text(x + 3, height - 4, f"threshold {fmt(label)}", "start", ' fill="#d62728"'))
    return _svg(width, height, body, title)


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str, x_label: str = "",
               y_label: str = "", width: int = 420, height: int = 240, diagonal: bool = False,
               unit_square: bool = False) -> str:
    """Lines with markers, one per ``(name, xs, ys)``; numeric x."""
    with_legend = len(series) > 1 or bool(series and series[0][0])
    left, right, top, bottom = 48, 14, 44 if with_legend else 30, 40
    pw, ph = width - left - right, height - top - bottom
    xs = [x for s in series for x in s[1]]
    ys = [y for s in series for y in s[2] if y is not None]
    if unit_square:
        x0, x1, y0, y1 = 0.0, 1.0, 0.0, 1.0
    else:
        x0, x1 = min(xs, default=0.0), max(xs, default=1.0)
        if x1 == x0:
            x0, x1 = x0 - 1, x1 + 1
        y0, y1 = min(ys + [0.0]), max(ys, default=1.0)
        yt = nice_ticks(y0, y1 if y1 > y0 else y0 + 1, 4)
        y0, y1 = yt[0], yt[-1]

    def sx(v: float) -> float:
        return left + pw * (v - x0) / (x1 - x0)

    def sy(v: float) -> float:
        return top + ph - ph * (v - y0) / ((y1 - y0) or 1)

    body = [_text(4, 16, title, extra=' font-weight="bold" font-size="13"')]
    for t in nice_ticks(y0, y1, 4):
        if y0 - 1e-9 <= t <= y1 + 1e-9:
            body.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{width - right}" y2="{sy(t):.1f}" stroke="#e4e4e4"/>')
            body.append(_text(left - 4, sy(t) + 4, fmt(t), "end"))
    for t in nice_ticks(x0, x1, 5):
        if x0 - 1e-9 <= t <= x1 + 1e-9:
            body.append(_text(sx(t), top + ph + 14, fmt(t), "middle"))
    body.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    if diagonal:
        body.append(f'<line x1="{sx(x0):.1f}" y1="{sy(y0):.1f}" x2="{sx(x1):.1f}" y2="{sy(y1):.1f}" '
                    f'stroke="#aaa" stroke-dasharray="4,3"/>')
    for j, (name, sxs, sys_) in enumerate(series):
        c = PALETTE[j % len(PALETTE)]
        pts = [(x, y) for x, y in zip(sxs, sys_, strict=False) if y is not None]
        if len(pts) > 1:
            d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            body.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        if len(pts) <= 60:
            for x, y in pts:
                body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{c}"><title>'
                            f'{esc(name)}: {esc(fmt(x))} → {esc(fmt(y))}</title></circle>')
    body.append(_text(left + pw / 2, height - 6, x_label, "middle"))
    body.append(_text(12, top + ph / 2, y_label, "middle", f' transform="rotate(-90 12 {top + ph / 2:.1f})"'))
    if with_legend:
        body += legend([(s[0], PALETTE[j % len(PALETTE)]) for j, s in enumerate(series)], left, 34)
    return _svg(width, height, body, title)


def vbar_chart(labels: Sequence[str], values: Sequence[float | None], title: str, x_label: str = "",
               width: int = 420, height: int = 240) -> str:
    """Vertical bars for a metric over categories (e.g. cost per provider)."""
    left, right, top, bottom = 48, 10, 30, 46
    pw, ph = width - left - right, height - top - bottom
    vals = [float(v) if v is not None else 0.0 for v in values]
    yt = nice_ticks(min(vals + [0.0]), max(vals + [0.0]) or 1, 4)
    y0, y1 = yt[0], yt[-1]
    bw = pw / max(len(labels), 1)
    body = [_text(4, 16, title, extra=' font-weight="bold" font-size="13"')]

    def sy(v: float) -> float:
        return top + ph - ph * (v - y0) / ((y1 - y0) or 1)

    for t in yt:
        body.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{width - right}" y2="{sy(t):.1f}" stroke="#e4e4e4"/>')
        body.append(_text(left - 4, sy(t) + 4, fmt(t), "end"))
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        x = left + i * bw
        top_y, base = sy(max(float(v or 0), 0)), sy(min(float(v or 0), 0))
        body.append(f'<rect x="{x + bw * 0.15:.1f}" y="{top_y:.1f}" width="{bw * 0.7:.1f}" '
                    f'height="{max(base - top_y, 1):.1f}" fill="{PALETTE[i % len(PALETTE)]}"><title>{esc(lab)}: '
                    f'{esc(fmt(v) if v is not None else "n/a")}</title></rect>')
        body.append(_text(x + bw / 2, top_y - 3, fmt(v) if v is not None else "n/a", "middle"))
        body.append(_text(x + bw / 2, top + ph + 14, _clip(lab, max(4, int(bw / 6.5))), "middle"))
    body.append(_text(left + pw / 2, height - 6, x_label, "middle"))
    return _svg(width, height, body, title)


def scatter(points: Sequence[tuple[float, float, int, bool]], title: str, width: int = 560,
            height: int = 420) -> str:
    """2-D map: ``(x, y, group, highlighted)``; colour by group, highlighted points ringed."""
    pad = 24
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs, default=0), max(xs, default=1)
    y0, y1 = min(ys, default=0), max(ys, default=1)
    sxr, syr = (x1 - x0) or 1, (y1 - y0) or 1

    def pos(x: float, y: float) -> tuple[float, float]:
        return pad + (width - 2 * pad) * (x - x0) / sxr, 52 + (height - 52 - pad) * (1 - (y - y0) / syr)

    body = [_text(4, 16, title, extra=' font-weight="bold" font-size="13"'),
            f'<rect x="1" y="40" width="{width - 2}" height="{height - 41}" fill="none" stroke="#ccc"/>']
    for x, y, g, hl in sorted(points, key=lambda p: p[3]):
        cx, cy = pos(x, y)
        c = PALETTE[g % len(PALETTE)]
        if hl:
            body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="{c}" stroke="#000" stroke-width="1.2"/>')
        else:
            body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{c}" fill-opacity="0.45"/>')
    body += legend([("selected (ringed)", "#000"), ("not selected (faint)", "#bbb")], 4, 33)
    return _svg(width, height, body, title)


def graph(nodes: Sequence[str], edges: Sequence[tuple[str, str]], title: str,
          status: dict[str, float] | None = None, width: int = 900) -> str:
    """A layered drawing of a directed graph (sources on the left), nodes coloured by ``status``.

    ``status`` maps a node to its execution success rate (0..1); nodes without one are grey.
    """
    index = {n: i for i, n in enumerate(nodes)}
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in index and b in index and a != b:
            succ[a].append(b)
    layer = _layers(nodes, succ)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(layer[n], []).append(n)
    ncol = max(columns, default=0) + 1
    rows = max((len(c) for c in columns.values()), default=1)
    node_w, row_h, top, gap = 130, 30, 34, 46
    width = max(width, 20 + ncol * (node_w + gap))
    height = top + rows * row_h + 30
    col_w = (width - node_w - 20) / max(ncol - 1, 1)
    where = {}
    for c, members in columns.items():
        for r, n in enumerate(members):
            where[n] = (10 + c * col_w, top + r * row_h + (rows - len(members)) * row_h / 2)
    body = [_text(4, 16, title, extra=' font-weight="bold" font-size="13"'),
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
            'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#999"/></marker></defs>']
    for a, b in edges:
        if a in where and b in where and a != b:
            (xa, ya), (xb, yb) = where[a], where[b]
            body.append(f'<path d="M{xa + node_w:.1f},{ya + 10:.1f} C{xa + node_w + gap:.1f},{ya + 10:.1f} '
                        f'{xb - gap:.1f},{yb + 10:.1f} {xb:.1f},{yb + 10:.1f}" fill="none" stroke="#bbb" '
                        f'marker-end="url(#arrow)"><title>{esc(a)} → {esc(b)}</title></path>')
    for n in nodes:
        x, y = where[n]
        rate = (status or {}).get(n)
        fill = "#eee" if rate is None else _ramp(rate)
        tip = "not executed" if rate is None else f"{rate:.0%} of calls succeeded"
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w}" height="20" rx="4" fill="{fill}" '
                    f'stroke="#777"><title>{esc(n)}: {esc(tip)}</title></rect>')
        body.append(_text(x + node_w / 2, y + 14, _clip(n, 19), "middle"))
    body += legend([("all calls ok", _ramp(1.0)), ("some failed", _ramp(0.5)), ("all failed", _ramp(0.0)),
                    ("not executed", "#eee")], width - 460, 16)
    return _svg(width, height, body, title)


def _ramp(rate: float) -> str:
    """Red (0) -> yellow (0.5) -> green (1)."""
    rate = min(1.0, max(0.0, rate))
    if rate < 0.5:
        r, g = 230, int(90 + 2 * rate * 140)
    else:
        r, g = int(230 - (rate - 0.5) * 2 * 140), 200
    return f"#{r:02x}{g:02x}80"


def _layers(nodes: Sequence[str], succ: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layer of each node, ignoring edges that close a cycle (found by DFS)."""
    state: dict[str, int] = {}
    order: list[str] = []
    dag: dict[str, list[str]] = {n: [] for n in nodes}
    for root in nodes:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif state.get(nxt) == 1:
                continue  # back edge: part of a cycle
            else:
                dag[node].append(nxt)
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
    layer = {n: 0 for n in nodes}
    for n in reversed(order):  # topological order of the DAG
        for m in dag[n]:
            layer[m] = max(layer[m], layer[n] + 1)
    return layer
