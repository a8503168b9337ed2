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
