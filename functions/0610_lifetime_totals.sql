-- Lifetime totals of one user per value of one dimension: merged rollups plus pending deltas.
-- Called by application backends (account pages) and the Python client's lifetime_totals().
create or replace function tally.lifetime_totals(user_id text, dimension text)
returns table (
  value       text,
  events      bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric,
  first_at    timestamptz,
  last_at     timestamptz,
  failures    bigint
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  keys text[] := tally._dimension_keys(dimension);
begin
  -- One statement, one snapshot: a delta is either still pending or already merged.
  return query
  -- A duration is known only when some event behind it had one (NULL duration_ms = unknown): no timed
  -- event and no amount of duration (an amendment may add one) means unknown.
  select x.value, sum(x.events)::bigint, sum(x.quantity),
         case when sum(x.timed_events) <> 0 or sum(x.duration_ms) <> 0 then sum(x.duration_ms) end, sum(x.cost),
         min(x.first_at), max(x.last_at), sum(x.failures)::bigint
    from (
      select t.value, t.events, t.quantity, t.duration_ms, t.timed_events, t.cost, t.first_at, t.last_at, t.failures
        from tally.user_totals t
       where t.user_id = lifetime_totals.user_id and t.dimension = lifetime_totals.dimension
      union all
      select tally._dimension_value(keys, p.kind, p.attributes, p.plan), p.events, p.quantity, p.duration_ms, p.timed_events, p.cost,
             case when p.is_use then p.occurred_at end, case when p.is_use then p.occurred_at end, p.failures
        from tally.pending_deltas p
       where p.user_id = lifetime_totals.user_id
    ) as x
   where x.value is not null
   group by x.value
   order by sum(x.quantity) desc, x.value;
end
$$;

comment on function tally.lifetime_totals(text, text) is
  'Lifetime totals of a user per value of a declared dimension (events, quantity, duration_ms, cost, first_at, last_at, failures), exact at commit; duration_ms is NULL when no event behind it had a duration (unknown).';
