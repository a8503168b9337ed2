-- The retained log rows that count, with their contributions (as tally.event_contributions): each row an exactly-once key names (same user, event_id and time), once.
-- Called by tally.verify and tally.rebuild, so that a row written past the insert trigger never counts twice.
create or replace function tally._counted_events(only_user text default null)
returns table (event_id text, user_id text, kind text, occurred_at timestamptz, attributes jsonb, events integer,
               failures integer, quantity bigint, duration_ms bigint, timed_events integer, cost numeric,
               billable boolean, is_use boolean, plan text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  -- The insert trigger keys every row it lets in, so a row without its key, or whose
  -- user's event_id is keyed to another time, was written past it (triggers disabled,
  -- session_replication_role = replica): the write path would have skipped it as a
  -- duplicate. Rows repeating the keyed (user, event_id, time) count once: the first
  -- in the order of their contents, so every caller picks the same one. Only the
  -- repeated ids are sorted; every other row passes through a hash anti-join.
  return query
  with keyed as materialized (
    select c.event_id, c.user_id, c.kind, c.occurred_at, c.attributes, c.events, c.failures, c.quantity,
           c.duration_ms, c.timed_events, c.cost, c.billable, c.is_use, c.plan
      from tally.event_contributions c
      join tally.event_keys k on k.user_id = c.user_id and k.event_id = c.event_id and k.occurred_at = c.occurred_at
     where only_user is null or c.user_id = only_user
  ), repeated as (
    select r.user_id, r.event_id from keyed r group by r.user_id, r.event_id having count(*) > 1
  )
  select r.* from keyed r
   where not exists (select from repeated d where d.user_id = r.user_id and d.event_id = r.event_id)
  union all
  (select distinct on (r.user_id, r.event_id) r.*
     from keyed r
    where exists (select from repeated d where d.user_id = r.user_id and d.event_id = r.event_id)
    order by r.user_id, r.event_id, r::text);
end
$$;

comment on function tally._counted_events(text) is
  'Contributions (as tally.event_contributions) of the retained log rows that count, for one user or all: each row named by its exactly-once key (user_id, event_id) and its occurred_at, once when the log repeats it; rows written past the insert trigger under a key they do not own are left out (internal; verify and rebuild recompute from it).';
