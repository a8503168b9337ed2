-- The deltas of [from_at, to_at) that the per-user day tables do not hold: pending deltas of the window's whole UTC days
-- and the raw log's rows of its partial days. Called by tally._analytics_delta_values and tally._analytics_delta_ops.
create or replace function tally._analytics_deltas(from_at timestamptz, to_at timestamptz)
returns table (user_id text, kind text, occurred_at timestamptz, attributes jsonb, events integer, failures integer,
               quantity bigint, duration_ms bigint, timed_events integer, cost numeric, billable boolean,
               is_use boolean, plan text)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  s record;
begin
  select * into s from tally._analytics_span(from_at, to_at);
  -- Whole days: the day tables hold the merged deltas; add the pending ones (exact at commit).
  return query
  select p.user_id, p.kind, p.occurred_at, p.attributes, p.events, p.failures, p.quantity, p.duration_ms,
         p.timed_events, p.cost, p.billable, p.is_use, coalesce(p.plan, '')
    from tally.pending_deltas p
   where p.occurred_at >= s.first_day::timestamp at time zone 'UTC'
     and p.occurred_at < s.end_day::timestamp at time zone 'UTC';
  -- Partial days: every retained log row (merged or pending) contributes by the rules of
  -- the insert trigger, as in tally.event_contributions. Two ranges, so that only their
  -- partitions are read.
  return query
  select e.user_id, e.kind, e.occurred_at, e.attributes,
         case when e.status = 'reversed' then -1
              when e.status <> 'succeeded' or e.corrects_event_id is not null then 0 else 1 end,
         case when e.status = 'failed' then 1 else 0 end,
         case when e.status in ('succeeded', 'reversed') then e.quantity else 0 end,
         case when e.status in ('succeeded', 'reversed') then coalesce(e.duration_ms, 0) else 0 end,
         case when e.duration_ms is null or e.status not in ('succeeded', 'reversed') then 0
              when e.status = 'reversed' then -1 when e.corrects_event_id is not null then 0 else 1 end,
         case when e.status in ('succeeded', 'reversed') then e.cost else 0 end,
         e.billable and e.status in ('succeeded', 'reversed'),
         e.status = 'succeeded' and e.corrects_event_id is null,
         coalesce(e.plan, '')
    from tally.usage_events e
   where (e.occurred_at >= s.window_start and e.occurred_at < s.head_end)
  union all
  select e.user_id, e.kind, e.occurred_at, e.attributes,
         case when e.status = 'reversed' then -1
              when e.status <> 'succeeded' or e.corrects_event_id is not null then 0 else 1 end,
         case when e.status = 'failed' then 1 else 0 end,
         case when e.status in ('succeeded', 'reversed') then e.quantity else 0 end,
         case when e.status in ('succeeded', 'reversed') then coalesce(e.duration_ms, 0) else 0 end,
         case when e.duration_ms is null or e.status not in ('succeeded', 'reversed') then 0
              when e.status = 'reversed' then -1 when e.corrects_event_id is not null then 0 else 1 end,
         case when e.status in ('succeeded', 'reversed') then e.cost else 0 end,
         e.billable and e.status in ('succeeded', 'reversed'),
         e.status = 'succeeded' and e.corrects_event_id is null,
         coalesce(e.plan, '')
    from tally.usage_events e
   where (e.occurred_at >= s.tail_start and e.occurred_at < s.window_end);
end
$$;

comment on function tally._analytics_deltas(timestamptz, timestamptz) is
  'Signed contributions (as in tally.pending_deltas; plan '''' when none) of the part of [from_at, to_at) the per-user day tables do not hold: pending deltas of the whole UTC days, and the raw log''s rows of the partial days at either end, by the rules of tally.event_contributions (internal).';
