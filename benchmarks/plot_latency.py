"""Plot read latency against data size from `pgtally bench reads` (or `bench all`) `--output` JSON as an SVG (no plotting library).

    python benchmarks/plot_latency.py result.json docs/read-latency.svg

Two panels, both with a logarithmic x axis (events): p99 of the user reads and
of the whole admin dashboard in ms (left, with the user-read and dashboard
targets), and the same user reads and their answers computed from the raw log
at p99 (right, log y), so the gap that the user-read target's "100x" asks for
is visible.
"""

from __future__ import annotations

import json
import math
import sys
from html import escape
from pathlib import Path
from typing import Any

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
W, H = 980, 420
PANEL_W, PANEL_H = 400, 290
LEFT = [70, 560]
TOP = 60


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * e:
            return m * e
    return 10 * e


def _fmt_events(n: float) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def _panel(
    out: list[str],
    x0: int,
    title: str,
    sizes: list[int],
    series: list[tuple[str, list[float], str, str]],
    log_y: bool,
    ylabel: str,
    hlines: list[tuple[float, str]],
) -> None:
    lo_x, hi_x = math.log10(min(sizes)), math.log10(max(sizes))
    if hi_x == lo_x:
        hi_x += 1
    pad = (hi_x - lo_x) * 0.08
    lo_x, hi_x = lo_x - pad, hi_x + pad
    values = [v for _, vs, _, _ in series for v in vs if v > 0] + [h for h, _ in hlines]
    if log_y:
        lo_y = 10 ** math.floor(math.log10(min(values)))
        hi_y = 10 ** math.ceil(math.log10(max(values)))
        ticks = []
        t = lo_y
        while t <= hi_y * 1.0001:
            ticks.append(t)
            t *= 10

        def fy(v: float) -> float:
            return TOP + PANEL_H - (math.log10(v) - math.log10(lo_y)) / (math.log10(hi_y) - math.log10(lo_y)) * PANEL_H
    else:
        lo_y, hi_y = 0.0, _nice_max(max(values) * 1.1)
        ticks = [hi_y * i / 5 for i in range(6)]

        def fy(v: float) -> float:
            return TOP + PANEL_H - (v - lo_y) / (hi_y - lo_y) * PANEL_H

    def fx(n: float) -> float:
        return x0 + (math.log10(n) - lo_x) / (hi_x - lo_x) * PANEL_W

    out.append(
        f'<text x="{x0 + PANEL_W / 2}" y="{TOP - 22}" text-anchor="middle" font-weight="bold">{escape(title)}</text>'
    )
    out.append(f'<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>')
    for t in ticks:
        y = fy(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PANEL_W}" y2="{y:.1f}" stroke="#eee"/>')
        label = f"{t:g}" if t < 10000 else f"{t:,.0f}"
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
    for n in sizes:
        x = fx(n)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PANEL_H}" stroke="#eee"/>')
        out.append(
            f'<text x="{x:.1f}" y="{TOP + PANEL_H + 16}" text-anchor="middle" font-size="11">{_fmt_events(n)}</text>'
        )
    out.append(
        f'<text x="{x0 + PANEL_W / 2}" y="{TOP + PANEL_H + 34}" text-anchor="middle" font-size="12">events in the log (log scale)</text>'
    )
    out.append(
        f'<text transform="translate({x0 - 48},{TOP + PANEL_H / 2}) rotate(-90)" text-anchor="middle" font-size="12">{escape(ylabel)}</text>'
    )
    for h, label in hlines:
        y = fy(h)
        out.append(
            f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PANEL_W}" y2="{y:.1f}" stroke="#d62728" stroke-dasharray="6,4"/>'
        )
        out.append(
            f'<text x="{x0 + PANEL_W - 4}" y="{y - 4:.1f}" text-anchor="end" font-size="11" fill="#d62728" stroke="white" stroke-width="3" paint-order="stroke">{escape(label)}</text>'
        )
    for i, (name, vs, dash, c) in enumerate(series):
        pts = " ".join(f"{fx(n):.1f},{fy(v):.1f}" for n, v in zip(sizes, vs) if v > 0)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/>')
        for n, v in zip(sizes, vs):
            if v > 0:
                out.append(
                    f'<circle cx="{fx(n):.1f}" cy="{fy(v):.1f}" r="3.5" fill="{c}"><title>{escape(name)}: '
                    f"{v:,.2f} ms at {n:,} events</title></circle>"
                )
        ly = TOP + 14 + 16 * i
        out.append(
            f'<line x1="{x0 + 8}" y1="{ly - 4}" x2="{x0 + 28}" y2="{ly - 4}" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/>'
        )
        out.append(
            f'<text x="{x0 + 32}" y="{ly}" font-size="11" stroke="white" stroke-width="3" paint-order="stroke">{escape(name)}</text>'
        )


def render(result: dict[str, Any]) -> str:
    stages = result["stages"]
    sizes = [s["events"] for s in stages]
    names = [r["name"] for r in stages[-1]["user_reads"]]

    def get(stage: dict[str, Any], name: str, key: str) -> float:
        r = next((r for r in stage["user_reads"] if r["name"] == name), None)
        return float(r[key]) if r and r.get(key) is not None else 0.0

    left = [(f"{n} p99", [get(s, n, "p99_ms") for s in stages], "", COLORS[i]) for i, n in enumerate(names)]
    left.append(("whole admin dashboard p99", [s["dashboard"]["p99_ms"] for s in stages], "4,3", COLORS[4]))
    raw = [n for n in names if any(get(s, n, "raw_p50_ms") for s in stages)]
    right = [(f"{n} p99", [get(s, n, "p99_ms") for s in stages], "", COLORS[i]) for i, n in enumerate(raw)]
    right += [
        (f"raw log: {n} p99", [get(s, n, "raw_p99_ms") for s in stages], "4,3", COLORS[i]) for i, n in enumerate(raw)
    ]
    t = result.get("targets", {})
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
            'font-family="Helvetica, Arial, sans-serif" font-size="12">'
        ),
        f'<rect width="{W}" height="{H}" fill="white"/>',
        (
            f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">pgtally read latency '
            f"against data size ({', '.join(_fmt_events(n) for n in sizes)} events; users scale with events)</text>"
        ),
    ]
    _panel(
        out,
        LEFT[0],
        "pgtally reads, p99 (ms)",
        sizes,
        left,
        False,
        "ms",
        [(t.get("user_read_p99_ms", 5.0), f"user-read target {t.get('user_read_p99_ms', 5.0):g} ms")],
    )
    _panel(
        out, LEFT[1], "pgtally vs the same answer from the raw log, p99 (ms, log)", sizes, right, True, "ms (log)", []
    )
    out.append(
        f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle" font-size="10" fill="#666">'
        f"{escape(str(result.get('machine', {}).get('cpus', '?')))} cores, PostgreSQL "
        f"{escape(str(result.get('machine', {}).get('server', '')))}; dashboard target: p99 per read "
        f"&lt; {t.get('dashboard_p99_ms', 50):g} ms; source: pgtally bench reads --output</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    result = json.loads(Path(sys.argv[1]).read_text())
    # The JSON of `pgtally bench reads`, or of `pgtally bench all` (which holds it under "reads").
    Path(sys.argv[2]).write_text(render(result.get("reads", result)))


if __name__ == "__main__":
    main()
