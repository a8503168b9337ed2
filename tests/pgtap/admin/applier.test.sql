-- The merge applier tally._apply_admin keeps per-user sources of the admin views: first and last use per kind and
-- UTC day (a late event adds or widens a day), daily operational counters (corrections change billable cost, not attempts;
-- cancelled events leave nothing) and log-scale duration histograms.
begin;
select plan(8);

create function tests.ops_of(user_id text)
returns text language sql as $$
  select coalesce(string_agg(format('%s %s/%s ok%s fail%s timed%s d%s bill%s', o.day, o.kind, o.format, o.succeeded, o.failed,
                                    o.timed_events, o.duration_ms, trim_scale(o.billable_cost)), ' | '
                             order by o.day, o.kind, o.format), '')
    from tally.user_daily_ops o where o.user_id = ops_of.user_id
$$;

select is(format('%s %s %s %s %s %s', tally._duration_bucket(0), tally._duration_bucket(1), tally._duration_bucket(1023),
                 tally._duration_bucket(1024), tally._duration_bucket(7000), tally._duration_bucket(3600000)),
          '-1 0 79 80 102 174', 'buckets: floor(8 * log2(ms)), exact at powers of two, -1 for 0 ms');
select is(format('%s %s %s %s', tally._duration_bucket_ms(-1::smallint), tally._duration_bucket_ms(0::smallint),
                 tally._duration_bucket_ms(80::smallint), tally._duration_bucket_ms(102::smallint)),
          '0 1 1069 7194', 'a bucket stands for its geometric midpoint');

select ok(tests.tts('a1', 'u1', '2026-11-10 10:00+00', 100) and tests.tts('a2', 'u1', '2026-11-10 11:00+00', 50, duration_ms => 1024),
          'u1: two blocks on Nov 10');
select is(tally.merge_pending(), 2, 'first merge');
select ok(tests.tts('a0', 'u1', '2026-11-09 10:00+00', 70, duration_ms => null)             -- late, earlier, no duration
      and tests.tts('a3', 'u1', '2026-11-11 10:00+00', 10, status => 'failed')
      and tests.tts('a4', 'u1', '2026-11-11 11:00+00', 10, status => 'cancelled')
      and tally.amend_usage('u1', 'a1', 'a1-fix', 20, null, 0.0002)                                 -- booked on Nov 10
      and tally.reverse_usage('u1', 'a2', 'a2-refund')
      and tally.record_usage('x1', 'u1', 'export', 1, '2026-11-11 12:00+00', duration_ms => 3000,
                             attributes => '{"format": "wav"}'),
   'a late earlier event, a failure, a cancellation, an amendment, a reversal and an export');
select is(tally.merge_pending(), 6, 'second merge');

select is((select string_agg(format('%s %s %s..%s', r.kind, r.day, to_char(r.first_at at time zone 'UTC', 'HH24:MI'),
                                    to_char(r.last_at at time zone 'UTC', 'HH24:MI')), ' | ' order by r.kind, r.day)
             from tally.user_kind_days r where r.user_id = 'u1'),
          'export 2026-11-11 12:00..12:00 | tts 2026-11-09 10:00..10:00 | tts 2026-11-10 10:00..11:00',
          'step days: first and last use per kind and UTC day; the late event adds Nov 9; failures, cancellations, amendments and reversals are no use');
-- Nov 10: a1 (7 s, 0.001) + a2 (1024 ms, 0.0005) succeeded; the amendment adds 0.0002, the refund takes 0.0005 back.
select is(tests.ops_of('u1'),
          '2026-11-09 tts/ ok1 fail0 timed0 d0 bill0.0007 | 2026-11-10 tts/ ok2 fail0 timed2 d8024 bill0.0012 | '
          '2026-11-11 export/wav ok1 fail0 timed1 d3000 bill0 | 2026-11-11 tts/ ok0 fail1 timed0 d0 bill0',
          'daily operational counters: corrections change billable cost only, cancelled leaves nothing');

select * from finish();
rollback;
