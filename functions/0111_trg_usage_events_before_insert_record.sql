-- Row trigger on tally.usage_events: validates, deduplicates by (user_id, event_id) and appends the pending delta.
-- Fires for every INSERT/COPY row that does not come through tally.record_usage_batch (which does this set-wise).
create or replace function tally._trg_usage_events_before_insert_record()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  is_correction boolean := new.corrects_event_id is not null;
  original      record;
  succeeded     boolean;
  problem       text[];
begin
  -- Fast path: one expression (compiled once per session) accepts a valid row;
  -- tally._event_problem only runs to explain a rejection. Keep the two in step
  -- (tests/pgtap/log/validation checks every rule through this trigger).
  -- (A trigger WHEN clause would be re-planned for every single-row statement.)
  if not coalesce(
       new.event_id <> '' and new.user_id <> '' and new.kind <> ''
       and length(new.event_id) <= 200 and length(new.user_id) <= 200 and length(new.kind) <= 64
       and (new.error_code is null or length(new.error_code) <= 200)
       and (not is_correction or length(new.corrects_event_id) <= 200)
       and (new.status = 'succeeded' or new.status = 'failed' or new.status = 'cancelled'
            or (new.status = 'reversed' and is_correction))
       and new.quantity is not null and new.cost > -1e15 and new.cost < 1e15 and scale(new.cost) <= 20
       and new.quantity between -1000000000000000 and 1000000000000000
       and (new.duration_ms is null or new.duration_ms between -1000000000000 and 1000000000000)
       and (is_correction or (new.quantity >= 0 and new.cost >= 0 and (new.duration_ms is null or new.duration_ms >= 0)))
       and new.occurred_at >= '2000-01-01 00:00:00+00' and new.occurred_at <= statement_timestamp() + interval '1 day'
       and jsonb_typeof(new.attributes) = 'object'
       and ((pg_column_size(new.attributes) <= 1024 and pg_column_compression(new.attributes) is null)
            or octet_length(new.attributes::text) <= 16384),
       false) then
    problem := tally._event_problem(new.event_id, new.user_id, new.kind, new.quantity, new.occurred_at,
                                    new.duration_ms, new.cost, new.status, new.error_code, new.attributes,
                                    new.corrects_event_id);
    if problem is null then
      raise exception using errcode = 'PT000',
        message = 'usage event rejected by the insert check but no rule names it (a pgtally bug: please report)';
    end if;
    raise exception using errcode = problem[1], column = problem[2], message = problem[3];
  end if;

  if is_correction then
    -- The original is looked up under this event's user: an event_id names an event of one user.
    select k.correctable into original from tally.event_keys k
     where k.user_id = new.user_id and k.event_id = new.corrects_event_id;
    if not found or new.corrects_event_id = new.event_id then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L names no recorded event of user %L', new.corrects_event_id, new.user_id);
    elsif not original.correctable then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('corrects_event_id %L is not a succeeded original event; only those can be corrected', new.corrects_event_id);
    end if;
  end if;

  new.recorded_at := statement_timestamp();
  -- The plan in force when the usage happened, fixed now: usage by plan never moves later.
  new.plan := coalesce(
    (select s.plan from tally.subscriptions s
      where s.user_id = new.user_id and s.started_at <= new.occurred_at
        and (s.ended_at is null or s.ended_at > new.occurred_at)
      order by s.started_at desc limit 1),
    (select p.plan from tally.plans p where p.is_default));

  -- Exactly-once: the first committed insert of a key wins; a concurrent retry waits
  -- for it and then skips silently, so the producer's transaction goes on.
  insert into tally.event_keys (user_id, event_id, occurred_at, correctable)
  values (new.user_id, new.event_id, new.occurred_at, new.status = 'succeeded' and not is_correction)
  on conflict do nothing;
  if not found then
    return null;
  end if;

  if new.status = 'reversed' then
    -- A concurrent reversal of the same original waits here, then fails.
    insert into tally.reversals (user_id, original_event_id, event_id)
    values (new.user_id, new.corrects_event_id, new.event_id)
    on conflict do nothing;
    if not found then
      raise exception using errcode = 'PT008', column = 'corrects_event_id',
        message = format('event %L is already reversed', new.corrects_event_id);
    end if;
  end if;

  succeeded := new.status = 'succeeded';
  insert into tally.pending_deltas
    (user_id, kind, occurred_at, attributes, events, failures, quantity, duration_ms,
     timed_events, cost, billable, is_use, plan)
  values
    (new.user_id, new.kind, new.occurred_at, new.attributes,
     case when not succeeded then (case when new.status = 'reversed' then -1 else 0 end)
          when is_correction then 0 else 1 end,
     case when new.status = 'failed' then 1 else 0 end,
     case when succeeded or new.status = 'reversed' then new.quantity else 0 end,
     case when succeeded or new.status = 'reversed' then coalesce(new.duration_ms, 0) else 0 end,
     case when new.duration_ms is null or not (succeeded or new.status = 'reversed') then 0
          when new.status = 'reversed' then -1 when is_correction then 0 else 1 end,
     case when succeeded or new.status = 'reversed' then new.cost else 0 end,
     new.billable and (succeeded or new.status = 'reversed'),
     succeeded and not is_correction, new.plan);
  return new;
end
$$;

comment on function tally._trg_usage_events_before_insert_record() is
  'Validates a new usage event (SQLSTATE class PT, message naming the field), checks a correction''s original, records the plan in force, skips a duplicate (user_id, event_id) silently and appends the event''s signed contribution to tally.pending_deltas.';
