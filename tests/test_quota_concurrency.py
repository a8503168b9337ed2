"""The hard quota check under real concurrency: many connections compete for the last units of a limit.

Each worker runs ``check_quota`` and records its usage in one transaction (some
roll back after the check, a merge runs alongside); the limit is never
exceeded, and it is used up as far as the requests allow.
"""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest

from pgtally import Client, InvalidArgument, QuotaExceeded

LIMIT = 1000
ALREADY_USED = 700


def _setup(dsn: str) -> None:
    with Client.connect(dsn) as admin:
        admin.upsert_plan("free", tier=0, monthly_price=0, limits={"tts": LIMIT, "ocr": 5}, is_default=True)
        admin.record("seed", "hot", "tts", ALREADY_USED)
        admin.merge_pending()


def _period_usage(dsn: str, user: str, kind: str) -> int:
    with Client.connect(dsn) as c:
        return sum(p.quantity for p in c.period_totals(user) if p.kind == kind)


@pytest.mark.parametrize("isolation", ["read committed", "serializable"])
def test_concurrent_callers_never_exceed_the_limit(dsn: str, isolation: str) -> None:
    _setup(dsn)
    workers, attempts = 12, 12
    granted: list[int] = []
    refused = [0]
    rolled_back = [0]
    passed = [0]  # checks that passed; which of them are abandoned is counted, not drawn, so some always are
    retried = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(workers + 1)
    stop_merging = threading.Event()

    def worker(n: int) -> None:
        rng = random.Random(n)
        try:
            with psycopg.connect(dsn) as conn:  # not autocommit: the caller's own transactions
                conn.execute(f"set default_transaction_isolation = '{isolation}'")
                conn.commit()
                client = Client(conn)
                start.wait()
                for i in range(attempts):
                    amount = rng.randint(1, 40)
                    for _retry in range(50):  # serializable: a loser of a race retries, as real callers do
                        try:
                            with conn.transaction():
                                client.check_quota("hot", "tts", amount)
                                with lock:
                                    passed[0] += 1
                                    abandon = passed[0] % 5 == 1  # the first and every fifth check that passed
                                time.sleep(rng.random() * 0.004)  # the metered work, while holding the lock
                                if abandon:
                                    raise _Abandon()  # the work failed: nothing recorded, quota not consumed
                                client.record(f"w{n}-{i}", "hot", "tts", amount)
                            with lock:
                                granted.append(amount)
                        except QuotaExceeded:
                            with lock:
                                refused[0] += 1
                        except _Abandon:
                            with lock:
                                rolled_back[0] += 1
                        except psycopg.errors.SerializationFailure:
                            with lock:
                                retried[0] += 1
                            continue
                        break
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def merger() -> None:
        with Client.connect(dsn) as c:
            start.wait()
            while not stop_merging.is_set():
                c.merge_pending()
                time.sleep(0.005)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    merge_thread = threading.Thread(target=merger)
    for t in [*threads, merge_thread]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop_merging.set()
    merge_thread.join(timeout=30)
    assert not errors, errors

    used = _period_usage(dsn, "hot", "tts")
    assert used == ALREADY_USED + sum(granted), "every granted request was recorded exactly once"
    assert used <= LIMIT, f"limit {LIMIT} exceeded: {used}"
    assert refused[0] > 0, "the limit was reached, so some requests must have been refused"
    assert rolled_back[0] > 0, "the first check that passed was abandoned, and its quota was not consumed"
    # Every refusal happened while the remaining quota was smaller than the request
    # (at most 40), so the limit is used up to within the largest request.
    assert used > LIMIT - 40
    if isolation == "read committed":
        assert retried[0] == 0, "under READ COMMITTED the lock alone serializes the callers"


class _Abandon(Exception):
    pass


def test_the_lock_is_per_user_and_kind(dsn: str) -> None:
    _setup(dsn)
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn) as other:
        Client(holder).check_quota("hot", "tts", 1)  # holds (hot, tts) until commit
        other.execute("set lock_timeout = '2s'")
        other.commit()
        client = Client(other)
        assert client.check_quota("hot", "ocr", 1) == 3 + 1  # another kind: not blocked (5 - 0 - 1)
        assert client.check_quota("cold", "tts", 1) == LIMIT - 1  # another user: not blocked
        other.commit()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            client.check_quota("hot", "tts", 1)  # the same (user, kind) waits for the holder
        other.rollback()
        holder.rollback()
        assert client.check_quota("hot", "tts", 1) == LIMIT - ALREADY_USED - 1  # free once the holder ends
        other.rollback()


def test_repeatable_read_is_refused(dsn: str) -> None:
    _setup(dsn)
    with psycopg.connect(dsn) as conn:
        conn.execute("set transaction isolation level repeatable read")
        with pytest.raises(InvalidArgument) as info:
            Client(conn).check_quota("hot", "tts", 1)
        assert info.value.field == "transaction_isolation"


def test_quota_exceeded_names_the_numbers(dsn: str) -> None:
    _setup(dsn)
    with Client.connect(dsn) as c:
        assert c.check_quota("hot", "tts", LIMIT - ALREADY_USED) == 0
        with pytest.raises(QuotaExceeded) as info:
            c.check_quota("hot", "tts", LIMIT - ALREADY_USED + 1)
        assert info.value.sqlstate == "PT012" and info.value.field == "amount"
        assert (
            f"{ALREADY_USED} of tts used" in info.value.message
            and f"the {LIMIT} limit of plan free" in info.value.message
        )
        assert c.check_quota("hot", "llm", 10**9) is None
