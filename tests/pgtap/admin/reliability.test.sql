-- Reliability by kind and format: success rate, average and p50/p95/p99 durations from the applier's log-scale
-- histograms (no raw scan; estimates are bucket midpoints within 4.4%), per timeframe; and the top error codes,
-- which come from the retained raw log (error_code is not in the pending deltas).
begin;
select plan(10);

-- Exact answers from a handful of users: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

-- The instant `hours` before the start of the transaction (the windows end at the refresh, a little later).
create function tests.hours_ago(hours integer)
returns timestamptz language sql as $$
  select now() - make_interval(hours => hours)
$$;
create function tests.export(event_id text, user_id text, at timestamptz, ms bigint, fmt text,
                             status text default 'succeeded', error_code text default null)
returns boolean language sql as $$
  select tally.record_usage(event_id => event_id, user_id => user_id, kind => 'export', quantity => 1, occurred_at => at,
                            duration_ms => ms, status => status, error_code => error_code,
                            attributes => jsonb_build_object('format', fmt))
$$;
create function tests.reliability_of(time_window text)
returns text language sql as $$
  select string_agg(format('%s/%s ok%s fail%s %s%% avg%s p50=%s p95=%s p99=%s', r.kind, r.format, r.succeeded, r.failed,
                           r.success_rate, coalesce(r.avg_duration_ms::text, '-'), coalesce(r.p50_duration_ms::text, '-'),
                           coalesce(r.p95_duration_ms::text, '-'), coalesce(r.p99_duration_ms::text, '-')), ' | ')
    from tally.admin_reliability(time_window) r
$$;
create function tests.errors_of(time_window text, by_format boolean default false)
returns text language sql as $$
  select coalesce(string_agg(format('%s/%s/%s f%s u%s', e.kind, e.format, e.error_code, e.failures, e.users), ' | '), '')
    from tally.admin_error_codes(time_window, 10, by_format) e
$$;

-- 48 hours ago: ten mp3 exports of 1..10 s, two wav exports of 5 and 6 s, a wav and two mp3 failures.
-- An hour ago: one more mp3 failure. 20 hours ago: three 7 s TTS blocks. 40 days ago: a 40 s TTS block and a TTS failure.
select ok((select bool_and(tests.export('m' || i, 'u' || (i % 2 + 1), tests.hours_ago(48), i * 1000, 'mp3'))
             from generate_series(1, 10) i)
      and tests.export('w1', 'u3', tests.hours_ago(48), 5000, 'wav') and tests.export('w2', 'u3', tests.hours_ago(48), 6000, 'wav')
      and tests.export('wf', 'u3', tests.hours_ago(48), null, 'wav', 'failed', 'encoder_timeout')
      and tests.export('mf1', 'u1', tests.hours_ago(48), null, 'mp3', 'failed', 'storage_unavailable')
      and tests.export('mf2', 'u2', tests.hours_ago(48), null, 'mp3', 'failed', 'storage_unavailable')
      and tests.export('mf3', 'u1', tests.hours_ago(1), null, 'mp3', 'failed', 'storage_unavailable')
      and tests.tts('t1', 'u1', tests.hours_ago(20), 100) and tests.tts('t2', 'u1', tests.hours_ago(20), 100)
      and tests.tts('t3', 'u2', tests.hours_ago(20), 100)
      and tests.tts('t4', 'u2', tests.hours_ago(40 * 24), 500, duration_ms => 40000)
      and tests.tts('t5', 'u2', tests.hours_ago(40 * 24), 500, status => 'failed'),
   'exports and TTS blocks recorded');
select ok(tally.record_usage('t5e', 'u2', 'tts', 1, tests.hours_ago(40 * 24), status => 'failed', error_code => 'provider_timeout'),
          'and a TTS failure with an error code');
select ok(tally.merge_pending() = 22 and (select count(*) = 10 from tally.refresh_analytics()), 'merged and refreshed');

-- Nearest-rank percentiles of 1..10 s: p50 = 5 s, p95 = p99 = 10 s; reported as bucket midpoints 5087 and 10173 ms.
select is(tests.reliability_of('7d'),
          'export/* ok12 fail4 75.00% avg5500 p50=5087 p95=10173 p99=10173 | '
          'export/mp3 ok10 fail3 76.92% avg5500 p50=5087 p95=10173 p99=10173 | '
          'export/wav ok2 fail1 66.67% avg5500 p50=5087 p95=6049 p99=6049 | '
          'tts/* ok3 fail0 100.00% avg7000 p50=7194 p95=7194 p99=7194 | '
          'tts/ ok3 fail0 100.00% avg7000 p50=7194 p95=7194 p99=7194',
          '7d: success rate, average and percentile durations by kind, all formats (*) and each format');
select is((select string_agg(format('%s/%s ok%s fail%s %s%% avg%s p50=%s p95=%s', r.kind, r.format, r.succeeded, r.failed,
                                    r.success_rate, r.avg_duration_ms, r.p50_duration_ms, r.p95_duration_ms), ' | ')
             from tally.admin_reliability('all', 'tts') r),
          'tts/* ok4 fail2 66.67% avg15250 p50=7194 p95=40693 | tts/ ok4 fail2 66.67% avg15250 p50=7194 p95=40693',
          'all time, one kind: the 40 s block moves p95; failures have no duration');
select is(tests.errors_of('7d'), 'export/*/storage_unavailable f3 u2 | export/*/encoder_timeout f1 u1',
          'top error codes in 7 days, per kind');
select is(tests.errors_of('7d', true), 'export/mp3/storage_unavailable f3 u2 | export/wav/encoder_timeout f1 u1',
          'per kind and format');
select is(tests.errors_of('24h'), 'export/*/storage_unavailable f1 u1', 'the last 24 hours (exact: the raw log has times)');
select is(tests.errors_of('all'),
          'export/*/storage_unavailable f3 u2 | export/*/encoder_timeout f1 u1 | tts/*/ f1 u1 | tts/*/provider_timeout f1 u1',
          'all of the retained log; a failure without a code shows an empty code');

select * from finish();
rollback;
