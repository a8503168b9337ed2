-- Engagement profile of one user: first/last active, days active, current and longest streak, sessions.
-- Called by account pages and the Python client's engagement_profile(); exact at commit (rollups + pending deltas).
create or replace function tally.engagement_profile(user_id text, at timestamptz default now())
returns table (
  time_zone            text,
  first_active_at      timestamptz,
  last_active_at       timestamptz,
  days_active          bigint,
  current_streak       integer,
  current_streak_from  date,
  longest_streak       integer,
  longest_streak_from  date,
  longest_streak_to    date,
  sessions             bigint,
  total_session_ms     numeric,
  avg_session_ms       numeric,
  longest_session_ms   numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  tz    text := tally._user_time_zone(user_id);
  today date := (at at time zone tz)::date;
  session_count bigint;
  session_total numeric;
  session_avg   numeric;
  session_max   numeric;
begin
  -- A stable function: both statements read one snapshot, so a merge in between
  -- cannot make a delta count twice or not at all. The sessions are read by
  -- themselves: a statement that names one user's rows of distributed tables is
  -- sent whole to that user's shard on Citus, where the read functions below
  -- (which read other tables) may not run.
  select count(*), sum(s.ms), round(avg(s.ms)), max(s.ms)
    into session_count, session_total, session_avg, session_max
    from (
      select case when sum(s.explicit_events) > 0 then sum(s.explicit_ms)
                  else coalesce(round(extract(epoch from max(s.last_end_at) - min(s.first_at)) * 1000), 0) end as ms
        from (
          select u.session_id, u.events, u.explicit_events, u.explicit_ms, u.first_at, u.last_end_at
            from tally.user_sessions u
           where u.user_id = engagement_profile.user_id
          union all
          select tally._session_key(p.kind, p.attributes, p.occurred_at), p.events,
                 case when p.kind = 'session' then p.events else 0 end,
                 case when p.kind = 'session' then p.duration_ms else 0 end,
                 case when p.is_use then p.occurred_at end,
                 case when p.is_use then p.occurred_at + p.duration_ms * interval '1 millisecond' end
            from tally.pending_deltas p
           where p.user_id = engagement_profile.user_id and (p.kind = 'session' or p.attributes ? 'session_id')
             and tally._session_key(p.kind, p.attributes, p.occurred_at) is not null
        ) as s
       group by s.session_id
      having sum(s.events) > 0
    ) as s;
  return query
  with active_days as (
    -- Local days with at least one succeeded event (dimension kind covers every event).
    select d.day
      from tally.daily_totals(engagement_profile.user_id, 'kind', '2000-01-01', 'infinity') d
     group by d.day
    having sum(d.events) > 0
  ), islands as (
    -- Gaps and islands: consecutive days share day - row_number.
    select min(a.day) as first_day, max(a.day) as last_day, count(*)::integer as len
      from (select x.day, x.day - (row_number() over (order by x.day))::integer as grp from active_days x) as a
     group by a.grp
  ), current_island as (
    select i.first_day, (least(i.last_day, today) - i.first_day + 1) as len
      from islands i
     where i.first_day <= today and i.last_day >= today - 1
     order by i.first_day desc
     limit 1
  ), longest as (
    select i.first_day, i.last_day, i.len from islands i order by i.len desc, i.last_day desc limit 1
  ), life as (
    select min(t.first_at) as first_at, max(t.last_at) as last_at
      from tally.lifetime_totals(engagement_profile.user_id, 'kind') t
  )
  select tz, l.first_at, l.last_at,
         (select count(*) from active_days),
         coalesce((select c.len from current_island c), 0)::integer,
         (select c.first_day from current_island c),
         coalesce((select g.len from longest g), 0),
         (select g.first_day from longest g),
         (select g.last_day from longest g),
         session_count, session_total, session_avg, session_max
    from life l;
end
$$;

comment on function tally.engagement_profile(text, timestamptz) is
  'Engagement of a user as of at: first/last active moment, local days with succeeded usage, current streak (consecutive active local days ending today, or yesterday while today is still open), longest streak, and sessions (count, total, average and longest length in ms); exact at commit.';
