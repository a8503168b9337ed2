"""The measured side of ``pgtally bench memory``: one client process, run as ``python -m pgtally.bench.memory_child``.

It imports only pgtally and psycopg (not rich, nor the benchmark's own bookkeeping), connects to the database in
``$PGTALLY_MEMORY_BENCH_DSN`` and does one piece of work, named by its first argument:

* ``baseline``: nothing more (the memory of a bare client);
* ``record_many``: ``Client.record_many`` of N events of one user from a lazy generator (no list of events is built);
* ``export``: ``Client.export_events_csv`` of that user's N rows into a sink that counts bytes and keeps nothing.

It samples its resident set size (VmRSS) after fixed fractions of the work and prints ``progress <done> <rss KiB>``
lines (about every 1 %), then one ``result <JSON>`` line with the samples and its peak RSS (VmHWM, see :func:`peak_rss_kib`).
A wrong outcome (fewer events recorded or rows exported than N) exits 1 with one line on stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import IO, Any, cast

import psycopg

from ..client import Client
from ..models import UsageEvent

#: The environment variable that carries the DSN (not an argument: a password would show in the process list).
DSN_ENV = "PGTALLY_MEMORY_BENCH_DSN"
#: The one user of the load: the export of this user covers every event.
USER = "memory-bench-user"
#: A fixed window in the past: every event lies in [WINDOW_START, WINDOW_START + WINDOW), none in the future.
WINDOW_START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
WINDOW = dt.timedelta(days=365)
#: Fractions of the work after which the resident set size is sampled.
CHECKPOINTS = (0.01, 0.1, 0.25, 0.5, 0.75, 1.0)
VOICES = ("voice-a", "voice-b", "voice-c", "voice-d")


def _status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM), None where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_kib() -> int:
    """The process's resident set size now (VmRSS), in KiB; 0 where /proc is missing."""
    return _status_kib("VmRSS") or 0


def peak_rss_kib() -> int:
    """The process's peak resident set size (VmHWM), in KiB.

    Not ``ru_maxrss`` where /proc exists: Linux carries ru_maxrss across fork and exec, so a child started by a
    large parent (a test runner, the benchmark) would report the parent's size. ``ru_maxrss`` is the fallback
    (in bytes on macOS).
    """
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss // 1024 if sys.platform == "darwin" else maxrss


def events(n: int) -> Iterator[UsageEvent]:
    """``n`` events of :data:`USER`, evenly spread over the fixed window (deterministic, built one at a time)."""
    step = dt.timedelta(microseconds=(WINDOW // dt.timedelta(microseconds=1)) // n)
    for i in range(n):
        yield UsageEvent(
            f"mem-{i}",
            USER,
            "tts",
            100 + i % 50,
            occurred_at=WINDOW_START + i * step,
            duration_ms=(100 + i % 50) * 70,
            cost=Decimal("0.00036"),
            attributes={"voice": VOICES[i % len(VOICES)], "model": "kokoro"},
        )


class Checkpoints:
    """Counts the work done; samples VmRSS at :data:`CHECKPOINTS` and prints a progress line about every 1 %."""

    def __init__(self, total: int, out: Callable[[str], None] = print) -> None:
        self.total = total
        self.done = 0
        self.samples: list[dict[str, Any]] = []
        self._marks = [max(1, math.ceil(f * total)) for f in CHECKPOINTS]
        self._step = max(1, total // 100)
        self._next_line = self._step
        self._out = out

    def advance(self, n: int) -> None:
        self.done += n
        if self.done < self._next_line and (not self._marks or self.done < self._marks[0]):
            return
        rss = rss_kib()
        while self._marks and self.done >= self._marks[0]:
            fraction = CHECKPOINTS[len(self.samples)]
            self.samples.append({"fraction": fraction, "done": self.done, "rss_kib": rss})
            self._marks.pop(0)
        self._next_line = self.done + self._step
        self._out(f"progress {self.done} {rss}")

    def summary(self) -> dict[str, Any]:
        """The samples, the RSS after 10 % and after all of the work, and their ratio (flat memory: about 1.0)."""
        at = {s["fraction"]: s["rss_kib"] for s in self.samples}
        tenth, end = at.get(0.1, 0), at.get(1.0, 0)
        return {
            "checkpoints": self.samples,
            "rss_at_10pct_kib": tenth,
            "rss_at_end_kib": end,
            "growth": end / tenth if tenth else None,
        }


class CountingSink:
    """A binary sink that counts bytes and CSV lines and keeps nothing; the header line is not a row."""

    def __init__(self, checkpoints: Checkpoints) -> None:
        self.bytes = 0
        self.rows = -1  # the header's newline
        self._checkpoints = checkpoints

    def write(self, data: bytes | memoryview) -> int:
        chunk = bytes(data)
        lines = chunk.count(b"\n")
        self.bytes += len(chunk)
        if self.rows < 0 and lines:
            lines -= 1
            self.rows = 0
        self.rows += lines
        if lines:
            self._checkpoints.advance(lines)
        return len(chunk)


def _line(text: str) -> None:
    print(text, flush=True)


def record_many(client: Client, n: int, chunk_size: int) -> dict[str, Any]:
    marks = Checkpoints(n, _line)
    added = client.record_many(events(n), chunk_size=chunk_size, progress=marks.advance)
    if added != n:
        raise SystemExit(f"record_many recorded {added:,} of {n:,} events (does the database hold them already?)")
    return {"events": n, "added": added, **marks.summary()}


def export(client: Client, n: int, chunk_size: int) -> dict[str, Any]:
    marks = Checkpoints(n, _line)
    sink = CountingSink(marks)
    rows = client.export_events_csv(USER, WINDOW_START, WINDOW_START + WINDOW, cast("IO[bytes]", sink))
    if rows != n or sink.rows != n:
        raise SystemExit(f"the export wrote {rows:,} rows ({sink.rows:,} CSV lines after the header), not {n:,}")
    return {"rows": rows, "bytes": sink.bytes, **marks.summary()}


def baseline(client: Client, n: int, chunk_size: int) -> dict[str, Any]:
    return {}


WORK: dict[str, Callable[[Client, int, int], dict[str, Any]]] = {
    "baseline": baseline,
    "record_many": record_many,
    "export": export,
}


def main(argv: list[str]) -> None:
    """``<baseline|record_many|export> <events> <chunk size>``: do the work and print the result line."""
    kind, n, chunk_size = argv[0], int(argv[1]), int(argv[2])
    with psycopg.connect(os.environ[DSN_ENV], autocommit=True) as conn:
        client = Client(conn)
        conn.execute("select 1")
        start = rss_kib()
        t0 = time.perf_counter()
        done = WORK[kind](client, n, chunk_size)
        seconds = time.perf_counter() - t0
    # Linux updates VmHWM lazily (when the resident set is about to shrink), so it can lag the current
    # VmRSS: the peak is the largest of VmHWM, the RSS now and every sample.
    sampled = [int(c["rss_kib"]) for c in done.get("checkpoints", []) if c.get("rss_kib")]
    peak = max([peak_rss_kib(), rss_kib(), *sampled])
    result = {"kind": kind, "seconds": seconds, "rss_start_kib": start, "peak_rss_kib": peak, **done}
    _line("result " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
