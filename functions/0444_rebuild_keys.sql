-- Reconciles the exactly-once keys with the retained log: keys the rows that have none, and drops the keys
-- inside the retained log whose row is gone. Called by tally.rebuild and by `pgtally rebuild` (all users).
create or replace function tally.rebuild_keys(only_user text default null)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  since   timestamptz;
  removed bigint := 0;
  added   bigint;
begin
  -- Which rows count depends on the keys: no merge or rebuild meanwhile.
  perform tally._lock('merge');
  since := tally._retained_since();

  -- A key inside the retained log whose row is gone (deleted past the refusal triggers, or a
  -- key written by hand) would skip a re-sent event forever while no total counts it. Keys
  -- older than the retained log stay: retention dropped their rows on purpose. The key
  -- leads with the user, so one user's keys are an index range.
  with gone as (
    delete from tally.event_keys k
     where (only_user is null or k.user_id = only_user)
       and k.occurred_at >= since
       and not exists (select from tally.usage_events e
                        where e.user_id = k.user_id and e.event_id = k.event_id and e.occurred_at = k.occurred_at)
    returning k.user_id, k.event_id
  ), unreversed as (
    delete from tally.reversals r
     where (only_user is null or r.user_id = only_user)
       and (r.user_id, r.event_id) in (select g.user_id, g.event_id from gone g)
  )
  select count(*) into removed from gone;

  -- A row without any key (inserted past the insert trigger) is keyed as the trigger would
  -- have done it: the first recorded row of the user's event_id wins; it counts from now on.
  with added_keys as (
    insert into tally.event_keys (user_id, event_id, occurred_at, correctable)
    select distinct on (e.user_id, e.event_id) e.user_id, e.event_id, e.occurred_at,
           e.status = 'succeeded' and e.corrects_event_id is null
      from tally.usage_events e
     where (only_user is null or e.user_id = only_user)
       and not exists (select from tally.event_keys k where k.user_id = e.user_id and k.event_id = e.event_id)
     order by e.user_id, e.event_id, e.recorded_at, e.occurred_at
    on conflict do nothing
    returning user_id, event_id, occurred_at
  ), reversed as (
    -- A keyed reversal also takes its original's reversal slot, as the trigger does.
    insert into tally.reversals (user_id, original_event_id, event_id)
    select e.user_id, e.corrects_event_id, e.event_id
      from added_keys a
      join tally.usage_events e on e.user_id = a.user_id and e.occurred_at = a.occurred_at and e.event_id = a.event_id
     where e.status = 'reversed'
    on conflict do nothing
  )
  select count(*) into added from added_keys;
  return removed + added;
end
$$;

comment on function tally.rebuild_keys(text) is
  'Reconciles tally.event_keys with the retained log: a log row without a key (written past the insert trigger) gets one, its first recorded row winning; a key inside the retained log whose row is gone is dropped, so the event can be recorded again. Returns the number of keys added and dropped. Holds the merge lock.';
