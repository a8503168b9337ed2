-- The deltas of [from_at, to_at) the day tables do not hold, folded like tally.user_daily_values rows (per user, UTC day, plan, dimension, value, kind).
-- Called by the admin materialized views and the admin reads over a range, next to the rows of tally.user_daily_values.
create or replace function tally._analytics_delta_values(from_at timestamptz, to_at timestamptz,
                                                         only_dimension text default null)
returns table (user_id text, day date, plan text, dimension text, value text, kind text, events bigint, succeeded bigint,
               failures bigint, quantity numeric, duration_ms numeric, timed_events bigint, cost numeric,
               billable_cost numeric, first_at timestamptz, last_at timestamptz)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  -- The same folding as tally._apply_admin applies to a merge batch.
  select m.user_id, (m.occurred_at at time zone 'UTC')::date, m.plan, d.name, v.value, m.kind,
         sum(m.events)::bigint, (count(*) filter (where m.is_use))::bigint, sum(m.failures)::bigint,
         sum(m.quantity)::numeric, sum(m.duration_ms)::numeric, sum(m.timed_events)::bigint, sum(m.cost),
         coalesce(sum(m.cost) filter (where m.billable), 0),
         min(m.occurred_at) filter (where m.is_use), max(m.occurred_at) filter (where m.is_use)
    from tally._analytics_deltas(from_at, to_at) m
   cross join tally.dimensions d
   cross join lateral (select tally._dimension_value(d.keys, m.kind, m.attributes, nullif(m.plan, '')) as value) v
   where v.value is not null
     and (only_dimension is null or d.name = only_dimension)
   group by 1, 2, 3, 4, 5, 6
$$;

comment on function tally._analytics_delta_values(timestamptz, timestamptz, text) is
  'Pending deltas of the whole UTC days of [from_at, to_at) and raw log rows of its partial days, folded per user, UTC day, plan, dimension (all, or only_dimension), value and kind exactly as tally._apply_admin folds a merge batch into tally.user_daily_values (internal).';
