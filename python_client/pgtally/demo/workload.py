"""A deterministic, realistic usage workload for the demo, the tests and the benchmarks.

The shape follows a read-aloud app: a few heavy listeners and a long tail
(Zipf-distributed activity), each with one to three favourite voices and a time
zone, listening mostly in their evening and less at weekends. A listening
session synthesises consecutive text blocks (kind ``tts``, quantity =
characters) that share a ``session_id``; new scanned documents are OCR'd page
by page first; some sessions end with an audio export; free users now and then
walk down the paywall funnel; about 1% of events are re-emitted with the same
``event_id`` as a producer's retry would.

Everything is drawn from ``random.Random`` seeded by ``seed``, so the same
arguments give the same events (ids, users and timestamps), which makes loads
reproducible and re-running a load a pure exercise in deduplication.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ..models import UsageEvent

#: Time zones of the simulated users and their shares.
TIME_ZONES: tuple[tuple[str, float], ...] = (
    ("UTC", 0.10),
    ("America/Los_Angeles", 0.35),
    ("Europe/Berlin", 0.30),
    ("Asia/Tokyo", 0.15),
    ("Pacific/Auckland", 0.10),
)
#: TTS voices per model.
VOICES: Mapping[str, tuple[str, ...]] = {
    "kokoro": ("af_alloy", "af_bella", "am_adam", "bf_emma", "bm_george"),
    "openai": ("alloy", "nova", "echo", "shimmer"),
}
#: Share of users whose main TTS model is each model.
MODEL_SHARES: tuple[tuple[str, float], ...] = (("kokoro", 0.75), ("openai", 0.25))
#: TTS price per character, per model.
TTS_PRICE_PER_CHAR: Mapping[str, Decimal] = {"kokoro": Decimal("0.000002"), "openai": Decimal("0.000015")}
#: OCR price per page, per model (tesseract runs locally).
OCR_PRICE_PER_PAGE: Mapping[str, Decimal] = {"tesseract": Decimal("0"), "mistral-ocr": Decimal("0.001")}
#: Speaking rate used for audio durations.
CHARS_PER_SECOND = 14.0
#: Size range of one synthesised text block, in characters.
MIN_BLOCK_CHARS, MAX_BLOCK_CHARS = 40, 325
#: Exponent of the Zipf law of user activity (weight of the user ranked r is 1 / r**s).
ZIPF_EXPONENT = 1.1
#: Share of events re-emitted later with the same event_id (producer retries).
DUPLICATE_RATE = 0.01
#: Relative activity per UTC weekday, Monday first: fewer sessions at weekends.
WEEKDAY_FACTOR: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 0.9, 0.65, 0.75)

# Session shape.
_MEDIAN_BLOCKS = 18  # median TTS blocks per listening session (log-normal, sigma below)
_BLOCKS_SIGMA = 0.9
_MAX_BLOCKS = 400
_NEW_DOCUMENT_RATE = 0.2  # a session starts a new document
_PAUSE_RATE = 0.03  # the listener pauses between two blocks
_TTS_FAILURE_RATE = 0.004  # a block fails and is synthesised again under a new event_id
_EXPORT_RATE = 0.06  # a session ends with an audio export
_EXPORT_FAILURE_RATE = 0.05
_EXPORT_FORMATS = ("mp3", "m4a", "wav")
_EXPORT_FORMAT_CUM_SHARES = (0.6, 0.9, 1.0)
_EXPORT_ERRORS = ("encoder_timeout", "storage_unavailable", "file_too_large")
_TTS_ERRORS = ("provider_timeout", "rate_limited")
# Paywall funnel: chance per session of a free user to see it, then of each next step.
_PAYWALL_RATE = 0.05
_FUNNEL = (("paywall.clicked", 0.35), ("checkout.started", 0.6), ("checkout.completed", 0.55))
_PAYWALL_PLACEMENTS = ("voice_picker", "daily_limit", "export")
_PLANS = ("monthly", "annual")

_UTC = dt.timezone.utc
_DAY = 86_400.0


def _cumulative(weights: Sequence[float]) -> list[float]:
    """Running sums of ``weights``, for sampling with :func:`_pick`."""
    return list(itertools.accumulate(weights))


def _pick(rng: random.Random, cum_weights: Sequence[float]) -> int:
    """Index drawn with probability proportional to its weight (``cum_weights`` from :func:`_cumulative`)."""
    return bisect.bisect_right(cum_weights, rng.random() * cum_weights[-1])


def _local_hour_weights(peak_hour: float) -> list[float]:
    """Relative activity per local hour: quiet nights, a commute bump, office hours, an evening peak."""

    def bump(hour: float, centre: float, width: float) -> float:
        distance = abs(hour - centre) % 24
        distance = min(distance, 24 - distance)
        return math.exp(-0.5 * (distance / width) ** 2)

    return [
        0.04 + 0.4 * bump(h + 0.5, 8.0, 1.2) + (0.3 if 10 <= h < 18 else 0.0) + 1.5 * bump(h + 0.5, peak_hour, 1.6)
        for h in range(24)
    ]


@dataclass(slots=True)
class _User:
    """One simulated user: fixed traits drawn once per seed, plus the state a load advances."""

    user_id: str
    time_zone: str
    voices: list[tuple[str, str]]  # (model, voice), favourite first
    voice_cum_weights: list[float]
    local_hours: list[float]  # activity per local hour
    ocr_share: float  # chance that a new document is a scan
    ocr_model: str
    documents: int = 0
    subscribed: bool = False
    utc_hours: dict[int, list[float]] = field(default_factory=dict)  # cumulative weights per UTC offset (hours)

    def hour_weights(self, utc_offset: int) -> list[float]:
        """Cumulative activity weights over the 24 UTC hours of a day with this UTC offset."""
        cum = self.utc_hours.get(utc_offset)
        if cum is None:
            cum = self.utc_hours[utc_offset] = _cumulative([self.local_hours[(h + utc_offset) % 24] for h in range(24)])
        return cum


def _make_users(users: int, seed: int) -> tuple[list[_User], list[float]]:
    """The users of a seed and the cumulative Zipf weights of their activity.

    Drawn from their own random stream so that they do not depend on the
    number of events or the time range.
    """
    if users < 1:
        raise ValueError("users must be at least 1")
    rng = random.Random(f"pgtally-users-{seed}")
    zones, zone_cum = [z for z, _ in TIME_ZONES], _cumulative([w for _, w in TIME_ZONES])
    models, model_cum = [m for m, _ in MODEL_SHARES], _cumulative([w for _, w in MODEL_SHARES])
    ranks = list(range(1, users + 1))
    rng.shuffle(ranks)  # the heaviest user is not simply the first one
    width = max(5, len(str(users)))
    result: list[_User] = []
    for i in range(users):
        main = models[_pick(rng, model_cum)]
        voices = [(main, v) for v in rng.sample(VOICES[main], rng.randint(1, min(3, len(VOICES[main]))))]
        if len(voices) < 3 and rng.random() < 0.2:  # some users also like a voice of the other model
            other = rng.choice([m for m in models if m != main])
            voices.append((other, rng.choice(VOICES[other])))
        result.append(
            _User(
                user_id=f"user-{i + 1:0{width}d}",
                time_zone=zones[_pick(rng, zone_cum)],
                voices=voices,
                voice_cum_weights=_cumulative([0.7, 0.2, 0.1][: len(voices)]),
                local_hours=_local_hour_weights(rng.uniform(19.5, 23.0)),
                ocr_share=rng.uniform(0.1, 0.6),
                ocr_model="mistral-ocr" if rng.random() < 0.25 else "tesseract",
            )
        )
    return result, _cumulative([1.0 / rank**ZIPF_EXPONENT for rank in ranks])


def user_time_zones(users: int, seed: int) -> dict[str, str]:
    """The time zone of every user of :func:`generate_events` with the same ``users`` and ``seed``.

    Set them (``Client.set_user_settings``) before loading so that merges
    attribute events to the users' local days.
    """
    return {u.user_id: u.time_zone for u in _make_users(users, seed)[0]}


class _Workload:
    """The generator's state: random stream, users, counters and the time-ordered output buffer."""

    def __init__(self, users: int, events: int, seed: int, start: dt.datetime, end: dt.datetime) -> None:
        self.rng = random.Random(f"pgtally-events-{seed}")
        self.seed = seed
        self.users, self.user_cum = _make_users(users, seed)
        self.total = events
        self.t0, self.t1 = start.timestamp(), end.timestamp()
        self.produced = 0  # events pushed so far, retries included
        self.counter = 0  # numbers the event_ids and sessions
        self.heap: list[tuple[float, int, UsageEvent]] = []
        self.offsets: dict[tuple[str, float], int] = {}

    # ---------------------------------------------------------------- timing

    def _days(self) -> list[tuple[float, float, float]]:
        """(from, to, UTC midnight) of every UTC day overlapping the range, clipped to it."""
        first = dt.datetime.fromtimestamp(self.t0, _UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        days = []
        midnight = first
        while midnight < self.t1:
            lo, hi = max(midnight, self.t0), min(midnight + _DAY, self.t1)
            if hi > lo:
                days.append((lo, hi, midnight))
            midnight += _DAY
        return days

    def _day_targets(self, days: list[tuple[float, float, float]]) -> list[int]:
        """Cumulative event counts to reach by the end of each day.

        A day's share grows with its length, its weekday factor, a growth trend
        over the range (the product gains users) and some day-to-day noise.
        """
        span = self.t1 - self.t0
        weights = [
            (hi - lo)
            / _DAY
            * WEEKDAY_FACTOR[dt.datetime.fromtimestamp(midnight, _UTC).weekday()]
            * (0.6 + 0.4 * (lo - self.t0) / span)
            * self.rng.lognormvariate(0.0, 0.2)
            for lo, hi, midnight in days
        ]
        cum = _cumulative(weights)
        return [round(self.total * c / cum[-1]) for c in cum]

    def _utc_offset(self, time_zone: str, midnight: float) -> int:
        """The zone's UTC offset in whole hours at noon of the UTC day starting at ``midnight``."""
        key = (time_zone, midnight)
        offset = self.offsets.get(key)
        if offset is None:
            delta = dt.datetime.fromtimestamp(midnight + _DAY / 2, ZoneInfo(time_zone)).utcoffset()
            offset = self.offsets[key] = round(delta.total_seconds() / 3600) if delta else 0
        return offset

    def _session_start(self, user: _User, lo: float, hi: float, midnight: float) -> float:
        """A start time in [lo, hi) drawn from the user's local daily rhythm."""
        cum = user.hour_weights(self._utc_offset(user.time_zone, midnight))
        for _ in range(8):  # only clipped first and last days need more than one draw
            ts = midnight + (_pick(self.rng, cum) + self.rng.random()) * 3600.0
            if lo <= ts < hi:
                return ts
        return lo + self.rng.random() * (hi - lo)

    # ---------------------------------------------------------------- events

    def _emit(
        self,
        ts: float,
        user: _User,
        kind: str,
        quantity: int,
        duration_ms: int | None,
        cost: Decimal,
        attributes: dict[str, Any],
        status: str = "succeeded",
        error_code: str | None = None,
        billable: bool = True,
    ) -> bool:
        """Buffer one event (and maybe a later retry of it); False once the load is complete or past its end."""
        if self.produced >= self.total or ts >= self.t1:
            return False
        self.counter += 1
        event = UsageEvent(
            f"{kind}-{self.seed}-{self.counter}",
            user.user_id,
            kind,
            quantity,
            dt.datetime.fromtimestamp(ts, _UTC),
            duration_ms,
            cost,
            status,
            error_code,
            billable,
            attributes,
        )
        heapq.heappush(self.heap, (ts, self.counter, event))
        self.produced += 1
        if self.produced < self.total and self.rng.random() < DUPLICATE_RATE:
            # The same event sent again a little later; it keeps its occurred_at.
            self.counter += 1
            heapq.heappush(self.heap, (ts + self.rng.uniform(1.0, 120.0), self.counter, event))
            self.produced += 1
        return True

    def _ocr(self, user: _User, document_id: str, t: float) -> float:
        """OCR a newly imported scan page by page; returns the time after the last page."""
        rng, model = self.rng, user.ocr_model
        pages = min(60, 1 + int(rng.expovariate(1 / 5)))
        low, high = (800, 2500) if model == "mistral-ocr" else (1500, 5000)
        for _ in range(pages):
            ms = rng.randint(low, high)
            if not self._emit(
                t, user, "ocr", 1, ms, OCR_PRICE_PER_PAGE[model], {"model": model, "document_id": document_id}
            ):
                break
            t += ms / 1000
        return t + rng.uniform(2.0, 30.0)

    def _paywall(self, user: _User, t: float) -> float:
        """A free user meets the paywall and goes down the funnel as far as they go."""
        rng = self.rng
        placement = rng.choice(_PAYWALL_PLACEMENTS)
        if not self._emit(t, user, "paywall.viewed", 0, None, Decimal(0), {"placement": placement}, billable=False):
            return t
        plan = rng.choice(_PLANS)
        for kind, chance in _FUNNEL:
            if rng.random() >= chance:
                break
            t += rng.uniform(3.0, 90.0)
            attributes = {"placement": placement}
            if kind != "paywall.clicked":
                attributes["plan"] = plan
            if not self._emit(t, user, kind, 0, None, Decimal(0), attributes, billable=False):
                break
            if kind == "checkout.completed":
                user.subscribed = True
        return t + rng.uniform(2.0, 20.0)

    def _listen(self, user: _User, document_id: str, session_id: str, t: float) -> float:
        """Synthesise consecutive blocks of a document in one voice; returns the time after the last one."""
        rng = self.rng
        model, voice = user.voices[_pick(rng, user.voice_cum_weights)]
        price = TTS_PRICE_PER_CHAR[model]
        attributes = {"voice": voice, "model": model, "document_id": document_id, "session_id": session_id}
        blocks = min(_MAX_BLOCKS, max(1, int(rng.lognormvariate(math.log(_MEDIAN_BLOCKS), _BLOCKS_SIGMA))))
        for _ in range(blocks):
            # Blocks are cut at sentence ends below the maximum size; paragraph ends make short ones.
            chars = rng.randint(180, MAX_BLOCK_CHARS) if rng.random() < 0.75 else rng.randint(MIN_BLOCK_CHARS, 179)
            if rng.random() < _TTS_FAILURE_RATE:
                if not self._emit(
                    t,
                    user,
                    "tts",
                    chars,
                    None,
                    Decimal(0),
                    attributes,
                    status="failed",
                    error_code=rng.choice(_TTS_ERRORS),
                ):
                    break
                t += rng.uniform(1.0, 5.0)
            audio_ms = int(chars / CHARS_PER_SECOND * 1000 * rng.uniform(0.88, 1.12))
            if not self._emit(t, user, "tts", chars, audio_ms, chars * price, attributes):
                break
            # The next block is synthesised while this one plays.
            t += audio_ms / 1000 * rng.uniform(0.95, 1.1)
            if rng.random() < _PAUSE_RATE:
                t += rng.expovariate(1 / 180)
        return t

    def _export(self, user: _User, document_id: str, t: float) -> None:
        """Export the document's audio as a file; some exports fail."""
        rng = self.rng
        fmt = _EXPORT_FORMATS[_pick(rng, _EXPORT_FORMAT_CUM_SHARES)]
        failed = rng.random() < _EXPORT_FAILURE_RATE
        self._emit(
            t + rng.uniform(1.0, 30.0),
            user,
            "export",
            1,
            rng.randint(2000, 20000),
            Decimal(0),
            {"format": fmt, "document_id": document_id},
            status="failed" if failed else "succeeded",
            error_code=rng.choice(_EXPORT_ERRORS) if failed else None,
        )

    def _session(self, lo: float, hi: float, midnight: float) -> None:
        """One visit of a Zipf-chosen user starting in [lo, hi): OCR of a new scan, paywall, listening, export."""
        rng = self.rng
        user = self.users[_pick(rng, self.user_cum)]
        t = self._session_start(user, lo, hi, midnight)
        self.counter += 1
        session_id = f"s-{self.seed}-{self.counter}"
        new_document = user.documents == 0 or rng.random() < _NEW_DOCUMENT_RATE
        if new_document:
            user.documents += 1
        document_id = f"doc-{user.user_id}-{user.documents}"
        if new_document and rng.random() < user.ocr_share:
            t = self._ocr(user, document_id, t)
        if not user.subscribed and rng.random() < _PAYWALL_RATE:
            t = self._paywall(user, t)
        t = self._listen(user, document_id, session_id, t)
        if rng.random() < _EXPORT_RATE:
            self._export(user, document_id, t)

    def run(self) -> Iterator[UsageEvent]:
        """Yield the events day by day, in occurred_at order except for retries (a little late)."""
        days = self._days()
        for (lo, hi, midnight), target in zip(days, self._day_targets(days)):
            while self.produced < target:
                self._session(lo, hi, midnight)
            # Later sessions start at or after hi, so everything before it is final.
            while self.heap and self.heap[0][0] < hi:
                yield heapq.heappop(self.heap)[2]
        while self.heap:
            yield heapq.heappop(self.heap)[2]


def generate_events(users: int, events: int, seed: int, start: dt.datetime, end: dt.datetime) -> Iterator[UsageEvent]:
    """Exactly ``events`` usage events of ``users`` users between ``start`` and ``end``, deterministic per seed.

    Events come in occurred_at order, except that the ~1% retries (same
    event_id and content as an earlier event) arrive up to two minutes after
    their original. event_ids are ``f"{kind}-{seed}-{n}"``, user ids
    ``user-00001`` and up (see :func:`user_time_zones`). ``start`` and ``end``
    must be timezone-aware. Example::

        now = datetime.now(timezone.utc)
        client.record_many(generate_events(300, 5000, 7, now - timedelta(days=365), now))
    """
    if events < 0:
        raise ValueError("events must not be negative")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError("end must be after start")
    return _Workload(users, events, seed, start, end).run()
