-- Threshold alerts are recorded by the merge, once per user, billing period, kind and threshold.
begin;
select plan(10);

select tally.upsert_plan('free', 0, 0, '{"tts": 1000}', true);
select tally.upsert_plan('pro', 1, 10, '{"tts": 10000}');

-- 790 of 1,000: nothing yet.
select tally.record_usage('a', 'u1', 'tts', 790, occurred_at => '2025-03-02 10:00+00');
select tally.merge_pending();
select is((select count(*)::int from tally.quota_alerts), 0, 'under 80 percent: no alert');

-- 800 of 1,000: the 80 percent alert, once.
select tally.record_usage('b', 'u1', 'tts', 10, occurred_at => '2025-03-03 10:00+00');
select tally.merge_pending();
select results_eq($$select threshold, plan, monthly_limit, quantity::bigint, period_start, period_end
                      from tally.quota_alerts$$,
                  $$values (80, 'free', 1000::bigint, 800::bigint, date '2025-03-01', date '2025-04-01')$$,
                  'reaching 80 percent records the 80 percent alert with the plan, limit and usage');
select tally.record_usage('c', 'u1', 'tts', 10, occurred_at => '2025-03-04 10:00+00');
select tally.merge_pending();
select is((select count(*)::int from tally.quota_alerts), 1, 'more usage under the limit records nothing more');

-- 1,010: the 100 percent alert; merging more, or rebuilding, adds nothing.
select tally.record_usage('d', 'u1', 'tts', 200, occurred_at => '2025-03-05 10:00+00');
select tally.merge_pending();
select is((select array_agg(threshold order by threshold) from tally.quota_alerts), array[80, 100],
          'crossing the limit records the 100 percent alert');
select tally.record_usage('e', 'u1', 'tts', 5000, occurred_at => '2025-03-06 10:00+00');
select tally.merge_pending();
select tally.rebuild();
select is((select count(*)::int from tally.quota_alerts), 2, 'further merges and a rebuild record no alert twice');

-- A new billing period starts over.
select tally.record_usage('f', 'u1', 'tts', 1000, occurred_at => '2025-04-01 00:30+00');
select tally.merge_pending();
select is((select array_agg(threshold order by threshold) from tally.quota_alerts where period_start = '2025-04-01'),
          array[80, 100], 'the next billing period alerts again, both thresholds in one merge');

-- Usage that is not billable, failed, or of a kind without a limit records nothing.
select tally.record_usage('g', 'u2', 'tts', 5000, occurred_at => '2025-03-02 10:00+00', billable => false);
select tally.record_usage('h', 'u2', 'tts', 5000, occurred_at => '2025-03-02 10:00+00', status => 'failed');
select tally.record_usage('i', 'u2', 'ocr', 5000, occurred_at => '2025-03-02 10:00+00');
select tally.merge_pending();
select is((select count(*)::int from tally.quota_alerts where user_id = 'u2'), 0,
          'not billable, failed and unlimited usage records no alert');

-- The plan in force at the usage decides: on pro, 9,000 tts is 90 percent of 10,000.
select tally.start_subscription('u3', 'pro', '2025-03-10 00:00+00');
select tally.record_usage('j', 'u3', 'tts', 9000, occurred_at => '2025-03-11 10:00+00');
select tally.merge_pending();
select results_eq($$select threshold, plan from tally.quota_alerts where user_id = 'u3'$$,
                  $$values (80, 'pro')$$, 'the limit is the one of the plan in force');

-- Readers see their own alerts and nothing of the delivery side.
create role t_alert_reader login in role tally_reader;
set local role t_alert_reader;
select set_config('tally.user_id', 'u3', true);
select is((select array_agg(distinct user_id) from tally.quota_alerts), array['u3'], 'a reader sees its own alerts only');
select throws_ok($$select * from tally.webhook_endpoints$$, '42501', null, 'and cannot read the webhook endpoints');
reset role;

select * from finish();
rollback;
