-- Insights: robust z-score anomalies (median and MAD of the 28 days before, mean-deviation fallback,
-- minimum history), anonymized peer percentile (same-month periods, refreshed distribution, own pending usage), plain-language
-- insights. tests/pgtap/user/peers.test.sql attacks the peer percentile.
begin;
select plan(20);
set local timezone = 'UTC';

create function tests.anom(u text, f date, t date, th numeric default 3.5)
returns text language sql as $$
  select string_agg(format('%s:%s med=%s mad=%s act=%s z=%s %s', a.day, trim_scale(a.value), trim_scale(a.baseline_median),
                           trim_scale(a.baseline_mad), a.active_days, coalesce(a.robust_z::text, '-'),
                           case when a.is_anomaly then 'ANOMALY' else 'normal' end), ' | ' order by a.day)
    from tally.usage_anomalies(u, f, t, 'quantity', null, th, '2026-11-21 12:00+00') a
$$;

create function tests.peer(u text, k text default 'tts')
returns text language sql as $$
  select case when p.period_start is null then 'no usage'
              else format('%s q=%s peers=%s pct=%s', p.period_start, p.quantity, coalesce(p.peers::text, '-'),
                          coalesce(p.percentile::text, '-')) end
    from (select) as one left join tally.peer_percentile(u, k, '2026-11-21 12:00+00') p on true
$$;

create function tests.insights(u text)
returns text language sql as $$
  select coalesce(string_agg(format('[%s] %s', i.code, i.message), ' ' order by ordinality), '-')
    from tally.usage_insights(u, '2026-11-21 12:00+00') with ordinality as i
$$;

select is(tests.anom('nobody', '2026-11-20', '2026-11-21'),
          '2026-11-20:0 med=0 mad=0 act=0 z=- normal | 2026-11-21:0 med=0 mad=0 act=0 z=- normal', 'empty user: no dispersion, no anomaly');
select is(tests.insights('nobody'), '-', 'empty user: no insights');

-- a: 90 on even and 110 on odd days Oct 24 .. Nov 20 (median 100, MAD 10), then 1000 on Nov 21.
select ok((select bool_and(tests.tts('a' || d, 'a', d + time '10:00', case when extract(day from d)::int % 2 = 0 then 90 else 110 end))
             from generate_series(date '2026-10-24', date '2026-11-20', interval '1 day') d)
      and tests.tts('a-spike', 'a', '2026-11-21 10:00+00', 1000), 'a: 28 ordinary days and a spike');
select is(tests.anom('a', '2026-11-20', '2026-11-21'),
          '2026-11-20:90 med=100 mad=10 act=27 z=-0.67 normal | 2026-11-21:1000 med=100 mad=10 act=28 z=60.71 ANOMALY',
          'a: z = 0.6745 (x - median) / MAD; Nov 20''s baseline starts with the empty Oct 23 (pending)');
select is(tests.anom('a', '2026-11-21', '2026-11-21', 61), '2026-11-21:1000 med=100 mad=10 act=28 z=60.71 normal',
          'a: below a threshold of 61 the spike is normal');
-- b: 100 a day, once 200 (MAD 0: the mean absolute deviation 100/28 stands in), then 150.
select ok((select bool_and(tests.tts('b' || d, 'b', d + time '10:00', case when d = '2026-11-10' then 200 else 100 end))
             from generate_series(date '2026-10-24', date '2026-11-20', interval '1 day') d)
      and tests.tts('b-high', 'b', '2026-11-21 10:00+00', 150), 'b: a flat month and 150 today');
select is(tests.anom('b', '2026-11-21', '2026-11-21'), '2026-11-21:150 med=100 mad=0 act=28 z=11.17 ANOMALY',
          'b: z = (x - median) / (1.253314 * mean |x - median|) when MAD is 0');
-- c: only three active days in the baseline: never an anomaly, however large.
select ok(tests.tts('c1', 'c', '2026-11-01 10:00+00', 100) and tests.tts('c2', 'c', '2026-11-05 10:00+00', 100)
      and tests.tts('c3', 'c', '2026-11-10 10:00+00', 100) and tests.tts('c4', 'c', '2026-11-21 10:00+00', 5000), 'c: little history');
select is((select format('act=%s z>100=%s %s', a.active_days, a.robust_z > 100, a.is_anomaly)
             from tally.usage_anomalies('c', '2026-11-21', '2026-11-21', 'quantity', null, 3.5, '2026-11-21 12:00+00') a),
          'act=3 z>100=t f', 'c: fewer than 7 active baseline days');

-- Peers (kind llm): p01..p12 used 10..120 this month; p13's period starts Nov 15 (same month), p14's Oct 25 (not a peer).
-- 13 users publish only the median (at least 5 users on each side): between the 7th (60) and 8th (70) smallest.
create function tests.llm(id text, u text, at timestamptz, q bigint)
returns boolean language sql as $$ select tally.record_usage(id, u, 'llm', q, at) $$;
select lives_ok($$select tally.set_user_settings('p13', 'UTC', 15), tally.set_user_settings('p14', 'UTC', 25)$$,
                'p13 bills from the 15th, p14 from the 25th');
select ok((select bool_and(tests.llm('p' || i, 'p' || lpad(i::text, 2, '0'), '2026-11-20 10:00+00', 10 * i)) from generate_series(1, 12) i)
      and tests.llm('p13', 'p13', '2026-11-16 10:00+00', 5) and tests.llm('p14', 'p14', '2026-11-20 10:00+00', 1), 'fourteen llm users');
select is(tests.peer('p05', 'llm'), '2026-11-01 q=50 peers=- pct=-', 'before a refresh no distribution is published');
select is(tally.merge_pending() > 0 and (select count(*) = 10 from tally.refresh_analytics()), true,
          'merge and refresh: peers are compared on the refreshed distribution of merged counters');
select is(tests.peer('p05', 'llm') || ' / ' || tests.peer('p05', 'ocr') || ' / ' || tests.peer('p13', 'llm')
          || ' / ' || tests.peer('p12', 'llm'),
          '2026-11-01 q=50 peers=13 pct=0 / no usage / 2026-11-15 q=5 peers=13 pct=0 / 2026-11-01 q=120 peers=13 pct=50',
          'p05 and the lightest p13 are below the median, the heaviest p12 above it; without usage of ocr no answer');
select ok(tests.llm('p05b', 'p05', '2026-11-21 10:00+00', 1000), 'p05 uses 1000 more (pending)');
select is(tests.peer('p05', 'llm'), '2026-11-01 q=1050 peers=13 pct=50', 'p05: its own pending usage counts at once');
select is((select proargnames::text from pg_proc where oid = 'tally.peer_percentile(text, text, timestamptz)'::regprocedure),
          '{user_id,kind,at,period_start,quantity,peers,percentile,refreshed_at}', 'the peer percentile returns counts only, no user ids');

-- Plain-language insights.
select lives_ok($$select tally.upsert_plan('free', 0, 0, '{"tts": 1500}', true)$$, 'free plan: 1500 chars');
select ok(tests.tts('i0', 'i', '2026-10-05 10:00+00', 1000) and tests.tts('i1', 'i', '2026-11-19 10:00+00', 400)
      and tests.tts('i2', 'i', '2026-11-20 10:00+00', 500) and tests.tts('i3', 'i', '2026-11-21 10:00+00', 500), 'i: 1000 chars in October, 1400 in November');
select is(tests.insights('i') || ' # ' || tests.insights('a') || ' # ' || tests.insights('p11'),
          '[month_trend] tts usage is up 40.0% this month so far (1,400 vs 1,000 characters by this day last month) [streak] You are on a 3-day streak (your longest is 3 days) [top_voice] Your favourite voice is af_alloy: 28 s listened [quota] At your current pace you will reach your tts limit on 2026-11-22 (93.3% used so far)'
          || ' # [streak] You are on a 29-day streak (your longest is 29 days) [top_voice] Your favourite voice is af_alloy: 3 min 23 s listened [quota] You have used your whole tts allowance for this period (3,000 of 1,500) [anomaly] Today''s tts usage (1,000 characters) was far above your usual (median 100 a day)'
          || ' # [peer] You used more llm than 50% of users this period',
          'insights of i (trend, streak, voice, pace), a (streak, voice, quota, anomaly; too few tts peers) and p11 (13 llm peers)');

select * from finish();
rollback;
