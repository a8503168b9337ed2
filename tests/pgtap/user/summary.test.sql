-- Summary card: lifetime totals, per kind, top voices and models by listened duration, and the current
-- billing period against the limits of the plan in force (plan change mid-period), before and after a merge.
begin;
select plan(12);
set local timezone = 'UTC';

-- The card as lines 'section value e q d c [quota util]' joined by ' | ' in the function's order.
create function tests.card_of(u text, top_n integer, at timestamptz)
returns text language sql as $$
  select string_agg(format('%s %s e%s q%s d%s c%s%s', c.section, coalesce(c.value, '*'), c.events, c.quantity, c.duration_ms,
                           trim_scale(c.cost), case when c.section = 'period' then format(' /%s %s%%', coalesce(c.quota::text, '-'),
                                                                                          coalesce(c.utilization_pct::text, '-')) else '' end),
                    ' | ')
    from tally.summary_card(u, top_n, at) c
$$;

-- The plan and period every row carries.
create function tests.card_plan(u text, at timestamptz)
returns text language sql as $$
  select distinct format('%s %s..%s', coalesce(c.plan, '-'), c.period_start, c.period_end) from tally.summary_card(u, 5, at) c
$$;

select is(tests.card_of('nobody', 5, '2026-11-21 12:00+00'), 'total * e0 q0 d0 c0',
          'empty user without plans: one total line of zeros');
select lives_ok($$select tally.upsert_plan('free', 0, 0, '{"tts": 10000, "ocr": 20}', true)$$, 'free plan: 10000 chars, 20 pages');
select lives_ok($$select tally.upsert_plan('pro', 1, 10, '{"tts": 100000}')$$, 'pro plan: 100000 chars, pages unlimited');
select is(tests.card_of('nobody', 5, '2026-11-21 12:00+00'),
          'total * e0 q0 d0 c0 | period ocr e0 q0 d0 c0 /20 0.0% | period tts e0 q0 d0 c0 /10000 0.0%',
          'empty user: the default plan''s limits with nothing used');

-- u: voices alloy (openai, 2 x 40 min), af_bella (kokoro, 1 h), af_alloy (kokoro, 5 min); OCR pages; last month's usage.
select ok(tests.tts('t1', 'u', '2026-11-02 10:00+00', 3000, 'alloy', 'openai', 2400000)
      and tests.tts('t2', 'u', '2026-11-03 10:00+00', 3000, 'alloy', 'openai', 2400000)
      and tests.tts('t3', 'u', '2026-11-04 10:00+00', 2500, 'af_bella', 'kokoro', 3600000)
      and tests.tts('t4', 'u', '2026-10-20 10:00+00', 500, 'af_alloy', 'kokoro', 300000)
      and tally.record_usage('o1', 'u', 'ocr', 12, '2026-11-05 10:00+00', cost => 0.012)
      and tests.tts('t5', 'u', '2026-11-06 10:00+00', 700, 'af_bella', 'kokoro', 60000, 'failed'),
   'u: four tts events, a failed one and twelve OCR pages');
select is(tests.card_of('u', 2, '2026-11-21 12:00+00'),
          'total * e5 q d8700000 c0.102 | kind tts e4 q9000 d8700000 c0.09 | kind ocr e1 q12 d c0.012 | model openai e2 q6000 d4800000 c0.06 | model kokoro e2 q3000 d3900000 c0.03 | voice alloy e2 q6000 d4800000 c0.06 | voice af_bella e1 q2500 d3600000 c0.025 | period ocr e1 q12 d0 c0.012 /20 60.0% | period tts e3 q8500 d8400000 c0.085 /10000 85.0%',
          'u: totals, kinds by quantity, top 2 voices and models by duration, November against the free plan (pending)');
select is(tests.card_plan('u', '2026-11-21 12:00+00'), 'free 2026-11-01..2026-12-01', 'u: free plan, November period');
-- Subscribing mid-month: billing periods now start on the subscription's day (the 10th), so the
-- new period starts empty under the pro limits; the earlier usage stays in the period before it.
select lives_ok($$select tally.start_subscription('u', 'pro', '2026-11-10 00:00+00')$$, 'u upgrades to pro on Nov 10');
select is(tests.card_of('u', 1, '2026-11-21 12:00+00'),
          'total * e5 q d8700000 c0.102 | kind tts e4 q9000 d8700000 c0.09 | kind ocr e1 q12 d c0.012 | model openai e2 q6000 d4800000 c0.06 | voice alloy e2 q6000 d4800000 c0.06 | period tts e0 q0 d0 c0 /100000 0.0%',
          'u after subscribing on Nov 10: a new, empty period under the pro limits (top 1)');
select is(tests.card_plan('u', '2026-11-21 12:00+00') || ' / ' || tests.card_plan('u', '2026-11-09 12:00+00') || ' / '
          || tests.card_plan('u', '2026-10-25 12:00+00'),
          'pro 2026-11-10..2026-12-10 / free 2026-10-10..2026-11-10 / free 2026-10-10..2026-11-10',
          'periods run from the 10th; before the subscription the free plan was in force');
select is(tally.merge_pending(), 6, 'merge folds the six deltas');
select is(tests.card_of('u', 1, '2026-11-21 12:00+00'),
          'total * e5 q d8700000 c0.102 | kind tts e4 q9000 d8700000 c0.09 | kind ocr e1 q12 d c0.012 | model openai e2 q6000 d4800000 c0.06 | voice alloy e2 q6000 d4800000 c0.06 | period tts e0 q0 d0 c0 /100000 0.0%',
          'u: the same card after the merge');

select * from finish();
rollback;
