-- Applier: adds the merge batch (pg_temp._tally_merge) to the engagement profile: per-session rows and the hour-of-week histogram.
-- Called by tally._merge_pending_locked only.
create or replace function tally._apply_engagement()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- Sessions: events sharing attributes.session_id, or one session-kind event.
  -- Keys are upserted in sorted order like every applier (no deadlock with rebuilds).
  insert into tally.user_sessions as s
    (user_id, session_id, events, explicit_events, explicit_ms, first_at, last_end_at)
  select m.user_id, tally._session_key(m.kind, m.attributes, m.occurred_at), sum(m.events),
         sum(case when m.kind = 'session' then m.events else 0 end),
         sum(case when m.kind = 'session' then m.duration_ms else 0 end),
         min(m.occurred_at) filter (where m.is_use),
         max(m.occurred_at + m.duration_ms * interval '1 millisecond') filter (where m.is_use)
    from pg_temp._tally_merge m
   where (m.kind = 'session' or m.attributes ? 'session_id')
     and tally._session_key(m.kind, m.attributes, m.occurred_at) is not null  -- session_id "" or null: no session
   group by 1, 2
   order by 1, 2
  on conflict (user_id, session_id) do update set
    events = s.events + excluded.events,
    explicit_events = s.explicit_events + excluded.explicit_events,
    explicit_ms = s.explicit_ms + excluded.explicit_ms,
    first_at = least(s.first_at, excluded.first_at),
    last_end_at = greatest(s.last_end_at, excluded.last_end_at);

  -- Hour of the week in the user's local time (local_at was computed by the merge).
  insert into tally.user_hours as h (user_id, how, events, failures, quantity, duration_ms, cost)
  select m.user_id, ((extract(isodow from m.local_at)::integer - 1) * 24 + extract(hour from m.local_at)::integer)::smallint,
         sum(m.events), sum(m.failures), sum(m.quantity), sum(m.duration_ms), sum(m.cost)
    from pg_temp._tally_merge m
   group by 1, 2
   order by 1, 2
  on conflict (user_id, how) do update set
    events = h.events + excluded.events, failures = h.failures + excluded.failures,
    quantity = h.quantity + excluded.quantity, duration_ms = h.duration_ms + excluded.duration_ms,
    cost = h.cost + excluded.cost;
end
$$;

comment on function tally._apply_engagement() is
  'Merge applier for the engagement profile: adds the batch in pg_temp._tally_merge to tally.user_sessions and tally.user_hours (internal).';
