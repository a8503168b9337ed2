import psycopg


def test_record_and_read(conn: psycopg.Connection) -> None:
    assert conn.execute("select tally.record_usage('e1', 'u1', 'tts', 5)").fetchone() == (True,)
    rows = conn.execute("select value, events, quantity from tally.lifetime_totals('u1', 'kind')").fetchall()
    assert rows == [("tts", 1, 5)]
