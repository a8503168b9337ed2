-- The deltas of [from_at, to_at) the day tables do not hold, folded like tally.user_daily_ops rows (per user, UTC day, plan, kind, format).
-- Called by the admin materialized views and the admin reads over a range, next to the rows of tally.user_daily_ops.
create or replace function tally._analytics_delta_ops(from_at timestamptz, to_at timestamptz)
returns table (user_id text, day date, plan text, kind text, format text, succeeded bigint, failed bigint,
               timed_events bigint, duration_ms numeric, billable_cost numeric)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  -- The same folding as tally._apply_admin applies to a merge batch.
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, m.plan, m.kind,
         coalesce(left(m.attributes ->> 'format', 64), ''),
         (count(*) filter (where m.is_use))::bigint, sum(m.failures)::bigint,
         (count(*) filter (where m.is_use and m.timed_events = 1))::bigint,
         coalesce(sum(m.duration_ms) filter (where m.is_use and m.timed_events = 1), 0)::numeric,
         coalesce(sum(m.cost) filter (where m.billable), 0)
    from tally._analytics_deltas(from_at, to_at) m
   where m.is_use or m.failures <> 0 or (m.billable and m.cost <> 0)
   group by 1, 2, 3, 4, 5
$$;

comment on function tally._analytics_delta_ops(timestamptz, timestamptz) is
  'Pending deltas of the whole UTC days of [from_at, to_at) and raw log rows of its partial days, folded per user, UTC day, plan, kind and format exactly as tally._apply_admin folds a merge batch into tally.user_daily_ops (internal).';
