"""Markdown tables of docs/benchmarks.md from the JSON of `pgtally bench all --output all.json`.

    python benchmarks/report_tables.py all.json

Prints the ingest table (every figure against its bare baseline) and the
reads-at-scale tables (p99 and p50 per size, growth from the smallest to the
largest size), so the documented figures are the measured ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _n(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def ingest_table(ingest: dict[str, Any]) -> list[str]:
    lines = [
        "| figure | bare rows/s | bare + unique key | pgtally rows/s | ratio vs bare | ratio vs keyed | target |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f in ingest["figures"]:
        keyed = f.get("keyed_ratio")
        lines.append(
            f"| {f['name']} | {_n(f['baseline'])} | {_n(f.get('keyed_baseline'))} | {_n(f['pgtally'])} "
            f"| **{f['ratio']:.2f}x** | {'-' if keyed is None else f'{keyed:.2f}x'} | {f['target']}x |"
        )
    lines.append("")
    lines.append(f"Exactness after the run: {ingest.get('exactness', '-')}")
    return lines


def _label(stage: dict[str, Any]) -> str:
    return f"{stage['events'] / 1e6:g}M / {stage['users'] / 1e3:g}k users"


def reads_tables(reads: dict[str, Any]) -> list[str]:
    stages = reads["stages"]
    header = "| read | " + " | ".join(_label(s) for s in stages) + " | raw log at largest p50 / p99 |"
    lines = [
        "p99 (p50) in ms:",
        "",
        header,
        "|---|" + "---:|" * (len(stages) + 1),
    ]

    def rows(key: str, prefix: str = "") -> None:
        for i, first in enumerate(stages[0].get(key, [])):
            cells = []
            for s in stages:
                r = s[key][i]
                cells.append(f"{r['p99_ms']:.2f} ({r['p50_ms']:.2f})")
            last = stages[-1][key][i]
            raw = (
                f"{last['raw_p50_ms']:,.1f} / {last['raw_p99_ms']:,.1f}" if last.get("raw_p99_ms") is not None else "-"
            )
            lines.append(f"| {prefix}{first['name']} | " + " | ".join(cells) + f" | {raw} |")

    rows("user_reads")
    rows("heaviest_user_reads", "heaviest user only: ")
    rows("dashboard_reads", "dashboard: ")
    rows("call_time_reads", "at call time: ")
    lines.append(
        "| whole dashboard | "
        + " | ".join(f"{s['dashboard']['p99_ms']:.1f} ({s['dashboard']['p50_ms']:.1f})" for s in stages)
        + " | - |"
    )
    lines.append(
        "| refresh_analytics(), steady (first), s | "
        + " | ".join(f"{s['refresh_s']:.2f} ({s['refresh_first_s']:.2f})" for s in stages)
        + " | - |"
    )
    growth = reads["verdicts"]["growth"]["p99_growth"]
    lines += ["", "| p99 growth, smallest to largest size | p99 |", "|---|---:|"]
    lines += [f"| {name} | {g:.2f}x |" for name, g in growth.items()]
    return lines


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/report_tables.py all.json (or the JSON of pgtally bench reads)")
    data = json.loads(Path(sys.argv[1]).read_text())
    if "stages" in data:  # `pgtally bench reads --output`: the reads part alone
        data = {"reads": data}
    if "figures" in data.get("ingest", {}):
        print("\n".join(ingest_table(data["ingest"])), end="\n\n")
    if "stages" in data.get("reads", {}):
        print("\n".join(reads_tables(data["reads"])), end="\n\n")
    for part in ("memory", "http", "citus"):
        if part in data:
            print(f"{part}: see the part's own table in the run's output ({len(json.dumps(data[part]))} bytes of JSON)")


if __name__ == "__main__":
    main()
