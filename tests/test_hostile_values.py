"""Hostile values through the whole lifecycle (property test).

Hypothesis writes events whose every field sits at or just beyond a documented
bound (quantity, duration_ms, cost, occurred_at, attribute size, text lengths,
long dimension values and session ids, corrections, duplicates) through every
write path: plain INSERT and COPY as tally_writer, tally.record_usage,
tally.record_usage_batch, and the Python client's record and record_many.
Then it merges, refreshes the analytics, rebuilds, verifies and calls every
read function (found in the catalog) for every user written.

What must hold:
- a write either records the event, skips a duplicate event_id, or fails with
  a documented PT rejection (PT001-PT008); a rejected event leaves nothing
  behind (no log row, key, delta or reversal);
- an event breaking a documented bound is always rejected, and every recorded
  event lies within the bounds;
- the merge, refresh, rebuild, verify and every read raise nothing, verify
  finds no drift, and lifetime totals equal a plain-Python sum of the recorded
  events, before the merge, after it and after the rebuild.

Values outside bigint are left out: they are not values of the contract's
types (PostgreSQL refuses them while parsing, before pgtally sees them), and
neither are texts with NUL characters (PostgreSQL text cannot hold them).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from every_read import argument_values, call_every_read
from pgtally import Client, UsageEvent

UTC = dt.timezone.utc
AT = dt.datetime(2025, 6, 20, 12, 0, tzinfo=UTC)
Q, D, C = 10**15, 10**12, Decimal(10) ** 15  # the documented bounds of quantity, duration_ms, cost
BIG = 2**63 - 1
MAX_ATTRIBUTES = 16384  # bytes of attributes as JSON text
WRITE_REJECTIONS = {f"PT00{i}" for i in range(1, 9)}  # what the write path may answer besides success
COLUMNS = (
    "event_id",
    "user_id",
    "kind",
    "occurred_at",
    "quantity",
    "duration_ms",
    "cost",
    "status",
    "error_code",
    "billable",
    "attributes",
    "corrects_event_id",
)
PATHS = ("insert", "copy", "record_usage", "record_usage_batch", "client_record", "client_record_many")
ZONES = ("UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/St_Johns")

chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
text = st.text(chars, max_size=12)
long_text = st.one_of(  # accepted: a long key is shortened, never refused
    st.text(chars, min_size=190, max_size=230),
    st.sampled_from(["v" * 200, "w" * 201, "".join(f"{i:08x}" for i in range(1200)), "\u00fc" * 700]),
)
attribute_value = st.one_of(
    text,
    long_text,
    st.none(),
    st.integers(-BIG - 1, BIG),
    st.booleans(),
    st.dictionaries(text, st.integers(0, 9), max_size=2),
)

# Valid values, at the bounds among others.
VALID = {
    "kind": st.sampled_from(["tts", "tts", "session", "paywall.viewed", "k" * 64]),
    "occurred_at": st.sampled_from(
        ["2000-01-01T00:00:00+00:00", "2025-06-18T09:30:00+00:00", "2025-06-19T23:59:59.999999-12:00", "+23h"]
    ),
    "quantity": st.one_of(st.sampled_from([0, 1, Q]), st.integers(0, Q)),
    "duration_ms": st.one_of(st.none(), st.sampled_from([0, D]), st.integers(0, D)),
    "cost": st.one_of(
        st.sampled_from([Decimal(0), Decimal("999999999999999.999999"), Decimal("1e-20")]),
        st.decimals(min_value=0, max_value=C - 1, places=6, allow_nan=False, allow_infinity=False),
    ),
    "status": st.sampled_from(["succeeded", "succeeded", "failed", "cancelled"]),
    "error_code": st.sampled_from([None, "", "timeout", "e" * 200]),
    "attributes": st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "voice": attribute_value,
                "model": attribute_value,
                "session_id": attribute_value,
                "format": attribute_value,
            },
        ),
        # JSON text {"blob": "x..."} is 12 + N bytes: exactly the limit.
        st.just({"blob": "x" * (MAX_ATTRIBUTES - 12)}),
        st.just({"voice": "".join(f"{i:08x}" for i in range(2045))[: MAX_ATTRIBUTES - 40], "session_id": "s"}),
    ),
}
# Values just beyond a bound (or plainly wrong): each must be refused with a PT error.
HOSTILE = {
    "quantity": st.sampled_from([Q + 1, -Q - 1, BIG, -BIG - 1, -1]),
    "duration_ms": st.sampled_from([D + 1, -D - 1, BIG, -BIG - 1, -1]),
    "cost": st.sampled_from(
        [
            C,
            -C,
            Decimal("NaN"),
            Decimal("Infinity"),
            Decimal("-Infinity"),
            Decimal("-0.01"),
            Decimal("1e-21"),
            Decimal("1e-1000"),
        ]
    ),
    "occurred_at": st.sampled_from(
        ["1999-12-31T23:59:59.999999+00:00", "0001-01-02T00:00:00+00:00", "9999-12-30T00:00:00+00:00", "+25h"]
    ),
    "status": st.sampled_from(["reversed", "Succeeded", "done"]),
    "error_code": st.just("e" * 201),
    "kind": st.sampled_from(["", "k" * 65]),
    "attributes": st.one_of(
        st.just({"blob": "x" * (MAX_ATTRIBUTES - 11)}), st.sampled_from([[], "plain", 7, None])
    ),  # not an object: SQL paths only
    "event_id": st.sampled_from(["", "201"]),
    "user": st.just(2),  # a user id of 201 characters
    "corrects": st.sampled_from(["unknown", "long"]),
}


@st.composite
def event(draw: st.DrawFn) -> dict[str, Any]:
    """An event spec: valid values, then zero to two fields replaced by hostile ones."""
    spec = {name: draw(strategy) for name, strategy in VALID.items()}
    spec.update(
        path=draw(st.sampled_from(PATHS)),
        user=draw(st.sampled_from([0, 0, 1])),
        event_id=None,
        repeat=draw(st.integers(0, 5)),
        pick=draw(st.integers(0, 1000)),
        billable=draw(st.booleans()),
        corrects=None,
    )
    if draw(st.integers(0, 3)) == 0:  # a correction of an earlier event, with negative amounts
        spec.update(
            corrects="earlier",
            status=draw(st.sampled_from(["reversed", "succeeded"])),
            quantity=-draw(VALID["quantity"]),
            cost=-draw(VALID["cost"]),
        )
        spec["duration_ms"] = None if spec["duration_ms"] is None else -spec["duration_ms"]
    for name in draw(st.lists(st.sampled_from(sorted(HOSTILE)), max_size=2, unique=True)):
        spec[name] = draw(HOSTILE[name])
    return spec


@dataclass
class World:
    """What the test sent and the database accepted, per user (the oracle)."""

    prefix: str
    users: list[str]
    ids: list[str] = field(default_factory=list)
    recorded: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (user, event_id) -> event


def occurred_at(spec: str, now: dt.datetime) -> dt.datetime:
    if spec.startswith("+"):
        return now + dt.timedelta(hours=int(spec[1:-1]))
    return dt.datetime.fromisoformat(spec)


def json_bytes(value: Any) -> int:
    """Size of a JSON value as PostgreSQL prints jsonb (", " and ": " separators, UTF-8)."""
    return len(json.dumps(value, separators=(", ", ": "), ensure_ascii=False).encode())


def breaks_a_bound(ev: dict[str, Any], now: dt.datetime) -> str | None:
    """The documented bound an event breaks, if any (whatever else is wrong with it)."""
    correction = ev["corrects_event_id"] is not None
    if not ev["event_id"] or not ev["user_id"] or not ev["kind"]:
        return "a required field is empty"
    if len(ev["event_id"]) > 200 or len(ev["user_id"]) > 200 or len(ev["kind"]) > 64:
        return "a text field is too long"
    if len(ev["error_code"] or "") > 200 or len(ev["corrects_event_id"] or "") > 200:
        return "a text field is too long"
    if ev["status"] not in ("succeeded", "failed", "cancelled", "reversed") or (
        ev["status"] == "reversed" and not correction
    ):
        return "status"
    if abs(ev["quantity"]) > Q or (ev["quantity"] < 0 and not correction):
        return "quantity"
    d = ev["duration_ms"]
    if d is not None and (abs(d) > D or (d < 0 and not correction)):
        return "duration_ms"
    c = ev["cost"]
    if not c.is_finite() or abs(c) >= C or (c < 0 and not correction) or -int(c.as_tuple().exponent) > 20:
        return "cost"
    if not dt.datetime(2000, 1, 1, tzinfo=UTC) <= ev["occurred_at"] <= now + dt.timedelta(days=1):
        return "occurred_at"
    if not isinstance(ev["attributes"], dict):
        return "attributes"
    if json_bytes(ev["attributes"]) > MAX_ATTRIBUTES:
        return "attributes size"
    return None


def build_event(spec: dict[str, Any], world: World, n: int) -> dict[str, Any]:
    event_id = f"{world.prefix}-{n}"
    if spec["event_id"] is not None:
        event_id = (event_id + "-" * 201)[: int(spec["event_id"] or 0)]
    elif spec["repeat"] == 0 and world.ids:  # a retry, mostly of a recorded event
        ids = [event_id for _, event_id in world.recorded] or world.ids
        event_id = ids[spec["pick"] % len(ids)]
    elif spec["repeat"] == 1:
        event_id = (event_id + "-" * 200)[:200]
    corrects = {None: None, "unknown": f"{world.prefix}-nothing", "long": "c" * 201}.get(spec["corrects"])
    user_id = world.users[spec["user"]]
    if spec["corrects"] == "earlier":  # mostly a correctable original of the user
        originals = [e for e in world.recorded.values() if e["status"] == "succeeded" and not e["corrects_event_id"]]
        if originals and spec["pick"] % 4:
            original = originals[spec["pick"] % len(originals)]
            corrects, user_id = original["event_id"], original["user_id"] if spec["user"] < 2 else user_id
        else:
            corrects = world.ids[spec["pick"] % len(world.ids)] if world.ids else f"{world.prefix}-nothing"
    return {
        "event_id": event_id,
        "user_id": user_id,
        "kind": spec["kind"],
        "quantity": spec["quantity"],
        "duration_ms": spec["duration_ms"],
        "cost": spec["cost"],
        "status": spec["status"],
        "error_code": spec["error_code"],
        "billable": spec["billable"],
        "attributes": spec["attributes"],
        "corrects_event_id": corrects,
    }


def write(path: str, writer: psycopg.Connection, owner: psycopg.Connection, ev: dict[str, Any]) -> None:
    """Sends one event through one write path, as tally_writer (COPY: as the superuser where writers cannot)."""
    values = [ev[c] for c in COLUMNS]
    attrs = COLUMNS.index("attributes")
    if path in ("insert", "record_usage"):
        values[attrs] = json.dumps(ev["attributes"])
        if path == "insert":
            writer.execute(
                f"insert into tally.usage_events ({', '.join(COLUMNS)}) values "
                f"(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
                values,
            )
        else:
            writer.execute(
                "select tally.record_usage(event_id => %s, user_id => %s, kind => %s, occurred_at => %s,"
                " quantity => %s, duration_ms => %s::bigint, cost => %s, status => %s,"
                " error_code => %s, billable => %s, attributes => %s::jsonb, corrects_event_id => %s)",
                values,
            )
    elif path == "copy":
        values[attrs] = json.dumps(ev["attributes"])
        with (
            (writer if COPY_AS_WRITER else owner).cursor() as cur,
            cur.copy(f"copy tally.usage_events ({', '.join(COLUMNS)}) from stdin") as copy,
        ):
            copy.write_row(values)
    elif path == "record_usage_batch":
        writer.execute(
            "select tally.record_usage_batch(array[%s], array[%s], array[%s], array[%s::bigint],"
            " array[%s::timestamptz], array[%s::bigint], array[%s::numeric], array[%s], array[%s::text],"
            " array[%s], array[%s::jsonb], array[%s::text])",
            [
                ev["event_id"],
                ev["user_id"],
                ev["kind"],
                ev["quantity"],
                ev["occurred_at"],
                ev["duration_ms"],
                ev["cost"],
                ev["status"],
                ev["error_code"],
                ev["billable"],
                json.dumps(ev["attributes"]),
                ev["corrects_event_id"],
            ],
        )
    else:
        client = Client(writer)
        e = UsageEvent(**ev)
        if path == "client_record":
            client.record(
                e.event_id,
                e.user_id,
                e.kind,
                e.quantity,
                occurred_at=e.occurred_at,
                duration_ms=e.duration_ms,
                cost=e.cost,
                status=e.status,
                error_code=e.error_code,
                billable=e.billable,
                attributes=e.attributes,
                corrects_event_id=e.corrects_event_id,
            )
        else:
            client.record_many([e])


COPY_AS_WRITER = False  # set by the test: PostgreSQL refuses COPY FROM where row-level security applies


def copy_as_writer_works(conn: psycopg.Connection) -> bool:
    """Whether tally_writer may COPY into the log (else the COPY path runs as the superuser)."""
    try:
        with conn.transaction():
            conn.execute("set local role tally_writer")
            with conn.cursor() as cur, cur.copy("copy tally.usage_events (event_id, user_id, kind) from stdin") as c:
                c.write_row(("probe", "probe", "tts"))
            raise _Rollback
    except _Rollback:
        return True
    except psycopg.errors.FeatureNotSupported:
        return False


class _Rollback(Exception):
    pass


def counts(conn: psycopg.Connection) -> tuple[int, ...]:
    row = conn.execute(
        "select (select count(*) from tally.usage_events), (select count(*) from tally.event_keys),"
        " (select count(*) from tally.pending_deltas), (select count(*) from tally.reversals)"
    ).fetchone()
    assert row is not None
    return tuple(row)


def expected_totals(world: World, user: str) -> dict[str, Any]:
    """Lifetime events, quantity, duration, cost and failures of a user, by the contribution rules."""
    t = {"events": 0, "quantity": 0, "duration_ms": 0, "cost": Decimal(0), "failures": 0}
    with decimal.localcontext() as exact:
        exact.prec = 5000  # numeric sums are exact: 1e-1000 + 1e15 keeps every digit
        add_events(t, world, user)
    return t


def add_events(t: dict[str, Any], world: World, user: str) -> None:
    for e in world.recorded.values():
        if e["user_id"] != user:
            continue
        counts_amounts = e["status"] in ("succeeded", "reversed")
        t["events"] += (
            -1
            if e["status"] == "reversed"
            else (1 if e["status"] == "succeeded" and e["corrects_event_id"] is None else 0)
        )
        t["failures"] += e["status"] == "failed"
        if counts_amounts:
            t["quantity"] += e["quantity"]
            t["duration_ms"] += e["duration_ms"] or 0
            t["cost"] += e["cost"]


def lifetime(conn: psycopg.Connection, user: str) -> dict[str, Any]:
    row = conn.execute(
        "select coalesce(sum(events), 0), coalesce(sum(quantity), 0), coalesce(sum(duration_ms), 0),"
        " coalesce(sum(cost), 0), coalesce(sum(failures), 0)"
        " from tally.lifetime_totals(%s, 'kind')",
        (user,),
    ).fetchone()
    assert row is not None
    return dict(zip(("events", "quantity", "duration_ms", "cost", "failures"), row))


@pytest.fixture
def writer(dsn: str) -> Any:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("set role tally_writer")
        yield c


@pytest.fixture
def owner(conn: psycopg.Connection) -> psycopg.Connection:
    # JIT compiling verify's and rebuild's plans costs seconds on a tiny database; the answers are the same.
    conn.execute("set jit = off")
    return conn


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(specs=st.lists(event(), min_size=1, max_size=8), zone=st.sampled_from(ZONES), anchor=st.sampled_from([1, 28]))
def test_hostile_values_through_the_whole_lifecycle(
    owner: psycopg.Connection, writer: psycopg.Connection, specs: list[dict[str, Any]], zone: str, anchor: int
) -> None:
    global COPY_AS_WRITER
    conn = owner
    COPY_AS_WRITER = copy_as_writer_works(conn)
    note(f"COPY as {'tally_writer' if COPY_AS_WRITER else 'superuser'}")
    prefix = uuid.uuid4().hex[:10]
    world = World(prefix, [f"{prefix}-a", (f"{prefix}-b" + "b" * 200)[:200], (f"{prefix}-c" + "c" * 201)[:201]])
    client = Client(conn)
    for user in world.users[:2]:
        client.set_user_settings(user, time_zone=zone, billing_anchor_day=anchor)

    for n, spec in enumerate(specs):
        now = dt.datetime.now(UTC)
        ev = build_event(spec, world, n)
        ev["occurred_at"] = occurred_at(spec["occurred_at"], now)
        path = spec["path"]
        if not isinstance(ev["attributes"], dict) and path not in (
            "insert",
            "copy",
            "record_usage",
            "record_usage_batch",
        ):
            path = "insert"  # the client takes attributes as a mapping only
        before = counts(conn)
        try:
            write(path, writer, conn, ev)
        except (psycopg.Error, Exception) as exc:
            state = getattr(exc, "sqlstate", None)
            assert state in WRITE_REJECTIONS, f"{path}: {ev!r} raised {exc!r} (sqlstate {state})"
            assert counts(conn) == before, f"{path}: a rejected event left something behind: {exc}"
            note(f"rejected {state}")
            continue
        finally:
            world.ids.append(ev["event_id"])
        bound = breaks_a_bound(ev, now)
        assert bound is None, f"{path}: recorded an event that breaks the {bound} bound: {ev!r}"
        if (ev["user_id"], ev["event_id"]) in world.recorded:  # the key is per user
            assert counts(conn) == before, f"{path}: a duplicate event_id was recorded twice"
            note("duplicate skipped")
        else:
            note("recorded" + (" correction" if ev["corrects_event_id"] else ""))
            after = counts(conn)
            assert after[:3] == tuple(b + 1 for b in before[:3]), f"{path}: {ev!r} was not recorded"
            world.recorded[(ev["user_id"], ev["event_id"])] = ev

    users = world.users[:2]
    values = [argument_values(u, AT, dt.date(2025, 6, 1), dt.date(2025, 6, 30), ["tts", "session"]) for u in users]

    def check() -> None:
        for u, v in zip(users, values):
            assert lifetime(conn, u) == expected_totals(world, u)
            call_every_read(conn, v)

    check()  # pending deltas only
    conn.execute("select tally.merge_pending()")
    check()  # merged
    conn.execute("select * from tally.refresh_analytics()")
    conn.execute("select tally.rebuild()")
    conn.execute("select tally.rebuild(%s, 'voice')", (users[0],))
    assert conn.execute("select check_name, sample from tally.verify() where drifted <> 0").fetchall() == []
    check()  # rebuilt from the log
