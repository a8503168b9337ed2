-- Platform totals per dimension (kind, a declared provider, model), averages, cost shares and the overview card,
-- from a hand-built data set with a failure, a reversal and a non-billable event; the views read merged rollups only.
begin;
select plan(17);

-- Exact answers from a handful of users: show every group (min_group_size.test.sql tests the minimum).
select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

-- Rendering helpers for this file (rolled back with it).
create function tests.totals_of(dimension text)
returns text language sql as $$
  select coalesce(string_agg(format('%s e%s f%s q%s d%s c%s u%s', t.value, t.events, t.failures, t.quantity,
                                    t.duration_ms, trim_scale(t.cost), t.users), ' | '), '')
    from tally.admin_totals(dimension) t
$$;
create function tests.totals_of_range(dimension text, from_day date, to_day date)
returns text language sql as $$
  select coalesce(string_agg(format('%s e%s f%s q%s d%s c%s u%s', t.value, t.events, t.failures, t.quantity,
                                    t.duration_ms, trim_scale(t.cost), t.users), ' | '), '')
    from tally.admin_totals(dimension, from_day => from_day, to_day => to_day) t
$$;
create function tests.averages_of(dimension text)
returns text language sql as $$
  select string_agg(format('%s q/e=%s d/e=%s c/e=%s e/u=%s q/u=%s c/u=%s share=%s', t.value, t.avg_quantity_per_event,
                           coalesce(t.avg_duration_ms::text, '-'), trim_scale(t.avg_cost_per_event),
                           t.avg_events_per_user, t.avg_quantity_per_user, trim_scale(t.avg_cost_per_user),
                           coalesce(t.cost_share_pct::text, '-')), ' | ')
    from tally.admin_totals(dimension) t
$$;

select lives_ok($$select tally.declare_dimension('provider', '{provider}')$$, 'a product declares a provider dimension');

-- u1: two TTS blocks with two providers. u2: TTS and an OCR page. u3: a failure, then a success that is reversed.
-- u4: one non-billable export.
select ok(tally.record_usage('t1', 'u1', 'tts', 100, '2026-11-01 10:00+00', duration_ms => 7000, cost => 0.001,
            attributes => '{"voice": "af_alloy", "model": "kokoro", "provider": "local"}')
      and tally.record_usage('t2', 'u1', 'tts', 300, '2026-11-02 10:00+00', duration_ms => 21000, cost => 0.006,
            attributes => '{"voice": "alloy", "model": "gpt-4o-mini-tts", "provider": "openai"}')
      and tally.record_usage('t3', 'u2', 'tts', 200, '2026-11-03 10:00+00', duration_ms => 14000, cost => 0.002,
            attributes => '{"voice": "af_alloy", "model": "kokoro", "provider": "local"}')
      and tally.record_usage('o1', 'u2', 'ocr', 3, '2026-11-03 11:00+00', duration_ms => 4000, cost => 0.003,
            attributes => '{"model": "mistral-ocr", "provider": "mistral"}')
      and tally.record_usage('t4', 'u3', 'tts', 50, '2026-11-04 10:00+00', status => 'failed', error_code => 'provider_timeout',
            attributes => '{"voice": "alloy", "model": "gpt-4o-mini-tts", "provider": "openai"}')
      and tally.record_usage('t5', 'u3', 'tts', 400, '2026-11-04 11:00+00', duration_ms => 28000, cost => 0.008,
            attributes => '{"voice": "alloy", "model": "gpt-4o-mini-tts", "provider": "openai"}')
      and tally.reverse_usage('u3', 't5', 'r5')
      and tally.record_usage('e1', 'u4', 'export', 1, '2026-11-05 09:00+00', duration_ms => 5000, billable => false,
            attributes => '{"format": "mp3"}'),
   'eight events recorded');

select is(tests.result_of($$(select count(*) from tally.admin_totals('kind'))$$), '0',
          'before any refresh the views are empty (installed WITH DATA, nothing merged)');

select is(tally.merge_pending(), 8, 'the deltas are merged into the rollups');
select is((select count(*)::int from tally.refresh_analytics() r where r.status = 'refreshed'), 10, 'all ten views refresh');

-- tts: t1+t2+t3+t5 succeeded, t5 reversed -> 3 events, 600 chars, 42 s over 3 timed events, 0.009; u3 counts (used it).
select is(tests.totals_of('kind'),
          'tts e3 f1 q600 d42000 c0.009 u3 | export e1 f0 q1 d5000 c0 u1 | ocr e1 f0 q3 d4000 c0.003 u1',
          'totals by kind: events net of the reversal, failures, users who used or failed at the kind');
select is(tests.averages_of('kind'),
          'tts q/e=200.00 d/e=14000 c/e=0.003 e/u=1.00 q/u=200.00 c/u=0.003 share=75.00 | '
          'export q/e=1.00 d/e=5000 c/e=0 e/u=1.00 q/u=1.00 c/u=0 share=0.00 | '
          'ocr q/e=3.00 d/e=4000 c/e=0.003 e/u=1.00 q/u=3.00 c/u=0.003 share=25.00',
          'averages per event and per user and the cost breakdown by kind');
select is(tests.totals_of('provider'),
          'local e2 f0 q300 d21000 c0.003 u2 | mistral e1 f0 q3 d4000 c0.003 u1 | openai e1 f1 q300 d21000 c0.006 u2',
          'totals by the declared provider dimension');
select is((select string_agg(format('%s=%s', t.value, t.cost_share_pct), ' ') from tally.admin_totals('provider') t),
          'local=25.00 mistral=25.00 openai=50.00', 'cost shares by provider');
select is(tests.totals_of('model'),
          'kokoro e2 f0 q300 d21000 c0.003 u2 | gpt-4o-mini-tts e1 f1 q300 d21000 c0.006 u2 | mistral-ocr e1 f0 q3 d4000 c0.003 u1',
          'totals by model (TTS and OCR models alike)');

-- 4 users; 5 events; 6 succeeded attempts (t5 counts: it ran) and 1 failure; billable cost 0.012 - 0.008 + 0.008;
-- Paying users of a window: those whose subscription at a price above zero is in force at some moment of it, whatever
-- they used. All time: u1 (pro since Nov 1, running) and u2 (pro Nov 1-3); not u3 (free), not u4 (no subscription).
select lives_ok($$
  select tally.upsert_plan('free', 0, 0, '{}', true), tally.upsert_plan('pro', 1, 10),
         tally.start_subscription('u1', 'pro', '2026-11-01 00:00+00'),
         tally.start_subscription('u2', 'pro', '2026-11-01 00:00+00'), tally.end_subscription('u2', '2026-11-03 00:00+00'),
         tally.start_subscription('u3', 'free', '2026-11-01 00:00+00')
$$, 'subscriptions: u1 pays, u2 paid and stopped, u3 is on the free plan');
select is((select format('users=%s events=%s ok=%s failed=%s rate=%s dur=%s cost=%s billable=%s paying=%s e/u=%s c/u=%s c/e=%s %s..%s',
                         o.users, o.events, o.succeeded, o.failures, o.success_rate, o.duration_ms, trim_scale(o.cost),
                         trim_scale(o.billable_cost), o.paying_users, o.avg_events_per_user, trim_scale(o.avg_cost_per_user),
                         trim_scale(o.avg_cost_per_event), to_char(o.first_at at time zone 'UTC', 'MM-DD HH24:MI'),
                         to_char(o.last_at at time zone 'UTC', 'MM-DD HH24:MI'))
             from tally.admin_overview() o),
          'users=4 events=5 ok=6 failed=1 rate=85.71 dur=51000 cost=0.012 billable=0.012 paying=2 e/u=1.25 c/u=0.003 c/e=0.0024 11-01 10:00..11-05 09:00',
          'the overview card (all time, the default)');
-- The UTC days Nov 4 and 5: u3's failure t4 and the reversed t5 (both Nov 4), u4's export (Nov 5); u1 pays.
select is((select format('users=%s events=%s ok=%s failed=%s rate=%s dur=%s cost=%s paying=%s %s..%s', o.users, o.events,
                         o.succeeded, o.failures, o.success_rate, o.duration_ms, trim_scale(o.cost), o.paying_users,
                         o.window_start at time zone 'UTC', o.window_end at time zone 'UTC')
             from tally.admin_overview(from_day => '2026-11-04', to_day => '2026-11-06') o),
          'users=2 events=1 ok=2 failed=1 rate=66.67 dur=5000 cost=0 paying=1 2026-11-04 00:00:00..2026-11-06 00:00:00',
          'the overview of a range of UTC days [from_day, to_day) leaves out the events before and after it');
select is(tests.totals_of_range('kind', '2026-11-02', '2026-11-04'),
          'tts e2 f0 q500 d35000 c0.008 u2 | ocr e1 f0 q3 d4000 c0.003 u1',
          'totals by kind for Nov 2 and 3: t2, t3 and o1 only');
select is(tests.result_of($$(select count(*) from tally.admin_totals('kind', from_day => '2026-11-04'))$$),
          'error PT011: from_day and to_day go together: the range is the UTC days [from_day, to_day) (got 2026-11-04 to null)',
          'a range needs both ends');
select throws_ok($$select * from tally.admin_totals('colour')$$, 'PT010', 'dimension ''colour'' is not declared',
                 'an undeclared dimension is a clear error');

select * from finish();
rollback;
