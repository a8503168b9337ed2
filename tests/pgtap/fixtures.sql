-- Test-only helpers, installed in the template database only (never in production).
create schema if not exists tests;

comment on schema tests is 'pgTAP fixtures; exists only in test databases.';

-- Records a TTS-like event with sensible defaults; returns whether it was new.
create or replace function tests.tts(event_id text, user_id text, at timestamptz, chars bigint default 100,
                                     voice text default 'af_alloy', model text default 'kokoro',
                                     duration_ms bigint default 7000, status text default 'succeeded')
returns boolean
language sql
as $$
  select tally.record_usage(event_id => tts.event_id, user_id => tts.user_id, kind => 'tts', quantity => chars,
                            occurred_at => at, duration_ms => tts.duration_ms, cost => chars * 0.00001,
                            status => tts.status,
                            attributes => jsonb_build_object('voice', voice, 'model', model))
$$;

-- Lifetime totals of a user and dimension as (value, events, quantity) rows, for results_eq.
create or replace function tests.lifetime(user_id text, dimension text)
returns table (value text, events bigint, quantity bigint)
language sql
as $$
  select t.value, t.events, t.quantity from tally.lifetime_totals(user_id, dimension) t order by t.value
$$;

-- ---------------------------------------------------------------------------
-- Compact, human-readable renderings of the read API, for is() against
-- hand-written literals. Costs go through trim_scale so 0.00100 reads 0.001.
-- ---------------------------------------------------------------------------

-- Lifetime totals as 'value e<events> q<quantity> d<duration_ms> c<cost> f<failures>' joined by ' | ' (by value).
create or replace function tests.lifetime_of(user_id text, dimension text)
returns text
language sql
as $$
  select coalesce(string_agg(format('%s e%s q%s d%s c%s f%s', t.value, t.events, t.quantity, t.duration_ms,
                                    trim_scale(t.cost), t.failures), ' | ' order by t.value), '')
    from tally.lifetime_totals(user_id, dimension) t
$$;

-- Daily totals as 'day value e<events> q<quantity> f<failures>' joined by ' | ' (by day, value).
create or replace function tests.daily_of(user_id text, dimension text, from_day date, to_day date)
returns text
language sql
as $$
  select coalesce(string_agg(format('%s %s e%s q%s f%s', t.day, t.value, t.events, t.quantity, t.failures),
                             ' | ' order by t.day, t.value), '')
    from tally.daily_totals(user_id, dimension, from_day, to_day) t
$$;

-- Billing-period counters as 'start..end kind e<events> q<quantity> d<duration_ms> c<cost>' joined by ' | ' (by kind).
create or replace function tests.period_of(user_id text, at timestamptz)
returns text
language sql
as $$
  select coalesce(string_agg(format('%s..%s %s e%s q%s d%s c%s', t.period_start, t.period_end, t.kind, t.events,
                                    t.quantity, t.duration_ms, trim_scale(t.cost)), ' | ' order by t.kind), '')
    from tally.period_totals(user_id, at) t
$$;

-- Row counts of the log, the exactly-once keys and the pending deltas, to show what a statement wrote.
create or replace function tests.counts()
returns text
language sql
as $$
  select format('events=%s keys=%s pending=%s',
                (select count(*) from tally.usage_events), (select count(*) from tally.event_keys),
                (select count(*) from tally.pending_deltas))
$$;

-- SQLSTATE, message and detail of the error a statement raises ('' when it raises none); the statement is rolled back.
create or replace function tests.error_of(statement text)
returns text
language plpgsql
as $$
declare
  state text;
  msg   text;
  det   text;
begin
  execute statement;
  return '';
exception when others then
  get stacked diagnostics state = returned_sqlstate, msg = message_text, det = pg_exception_detail;
  return format('%s: %s [%s]', state, msg, det);
end
$$;

-- record_usage_batch with per-batch defaults: one user, kind 'tts', no duration, cost 0, succeeded, billable.
create or replace function tests.batch(event_ids text[], user_id text, quantities bigint[],
                                       occurred_ats timestamptz[] default null, statuses text[] default null,
                                       corrects_event_ids text[] default null, user_ids text[] default null,
                                       kinds text[] default null, costs numeric[] default null,
                                       attributes_list jsonb[] default null, error_codes text[] default null)
returns integer
language plpgsql
as $$
declare
  n integer := cardinality(event_ids);
begin
  return tally.record_usage_batch(
    event_ids,
    coalesce(user_ids, array_fill(user_id, array[n])),
    coalesce(kinds, array_fill('tts'::text, array[n])),
    quantities,
    coalesce(occurred_ats, array_fill('2026-11-10 12:00:00+00'::timestamptz, array[n])),
    array_fill(null::bigint, array[n]),
    coalesce(costs, array_fill(0::numeric, array[n])),
    coalesce(statuses, array_fill('succeeded'::text, array[n])),
    coalesce(error_codes, array_fill(null::text, array[n])),
    array_fill(true, array[n]),
    coalesce(attributes_list, array_fill('{}'::jsonb, array[n])),
    coalesce(corrects_event_ids, array_fill(null::text, array[n])));
end
$$;

-- The first column of the first row a statement returns, as text, or 'error <SQLSTATE>: <message>'
-- when it raises (then rolled back), so a broken call fails one assertion instead of the whole file.
create or replace function tests.result_of(statement text)
returns text
language plpgsql
as $$
declare
  answer text;
begin
  execute format('select (%s)::text', statement) into answer;
  return answer;
exception when others then
  return format('error %s: %s', sqlstate, sqlerrm);
end
$$;
