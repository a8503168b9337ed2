-- Export: raw events of one user in a half-open time range (oldest first, other users excluded, corrections
-- included), and daily rollups of every dimension or one, merged + pending.
begin;
select plan(9);
set local timezone = 'UTC';

create function tests.ev_export(u text, f timestamptz, t timestamptz)
returns text language sql as $$
  select coalesce(string_agg(format('%s:%s:%s:%s', e.event_id, e.kind, e.quantity, e.status), ' '), '-')
    from tally.export_events(u, f, t) e
$$;

create function tests.roll_export(u text, f date, t date, dim text default null)
returns text language sql as $$
  select coalesce(string_agg(format('%s/%s/%s:e%s/q%s/f%s', r.day, r.dimension, r.value, r.events, r.quantity, r.failures), ' '), '-')
    from tally.export_rollups(u, f, t, dim) r
$$;

select is(tests.ev_export('nobody', '2026-01-01', '2027-01-01') || ' ' || tests.roll_export('nobody', '2026-01-01', '2026-12-31'),
          '- -', 'empty user: nothing to export');
select ok(tests.tts('e2', 'u', '2026-11-02 10:00+00', 20) and tests.tts('e1', 'u', '2026-11-01 00:00+00', 10, 'nova', 'openai')
      and tests.tts('e3', 'u', '2026-11-03 00:00+00', 30) and tests.tts('e0', 'u', '2024-02-29 12:00+00', 5)
      and tests.tts('x1', 'other', '2026-11-02 10:00+00', 99) and tally.reverse_usage('u', 'e2', 'e2-rev')
      and tests.tts('f1', 'u', '2026-11-02 11:00+00', 7, status => 'failed'), 'u: events, a reversal and a failure; another user');
select is(tests.ev_export('u', '2026-11-01', '2026-11-03'), 'e1:tts:10:succeeded e2:tts:20:succeeded e2-rev:tts:-20:reversed f1:tts:7:failed',
          'u: [from, to) oldest first, the reversal next to its original, the other user left out');
select is(tests.ev_export('u', '2024-02-29', '2024-03-01'), 'e0:tts:5:succeeded', 'u: the leap day');
select is(tests.roll_export('u', '2026-11-01', '2026-11-02'),
          '2026-11-01/kind/tts:e1/q10/f0 2026-11-01/model/openai:e1/q10/f0 2026-11-01/voice/nova:e1/q10/f0 2026-11-02/kind/tts:e0/q0/f1 2026-11-02/model/kokoro:e0/q0/f1 2026-11-02/voice/af_alloy:e0/q0/f1',
          'u: rollups of every dimension; the reversal cancels Nov 2, the failure stays a failure (pending)');
select is(tally.merge_pending(), 7, 'merge folds the seven deltas');
select ok(tests.tts('e4', 'u', '2026-11-01 12:00+00', 1, 'nova', 'openai'), 'u: one more event on Nov 1 (pending)');
select is(tests.roll_export('u', '2026-11-01', '2026-11-03', 'voice'),
          '2026-11-01/voice/nova:e2/q11/f0 2026-11-02/voice/af_alloy:e0/q0/f1 2026-11-03/voice/af_alloy:e1/q30/f0',
          'u: one dimension, merged + pending');
select is(tests.error_of($$select * from tally.export_events('u', '2026-02-01', '2026-01-01')$$),
          'PT011: need from_at <= to_at (got 2026-02-01 00:00:00+00 .. 2026-01-01 00:00:00+00) []', 'a reversed range is refused');

select * from finish();
rollback;
