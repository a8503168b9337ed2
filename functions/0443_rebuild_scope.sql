-- Per user (one or all): time zone, billing anchor and the part of the derived tables the retained log wholly covers.
-- Called by tally.rebuild and tally.verify, so that both rebuild and check exactly the same part.
create or replace function tally._rebuild_scope(only_user text default null)
returns table (user_id text, tz text, anchor_day integer, cutoff_day date, utc_cutoff_day date, whole boolean)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  -- Per-day tables are recomputed from the first day wholly inside the retained log:
  -- cutoff_day in the user's zone (user_daily, user_periods), utc_cutoff_day for the
  -- tables keyed by UTC day. Older days keep what the merges wrote.
  -- Lifetime tables (user_hours, user_sessions: a session may span any time) cannot be
  -- split by day: they are recomputed only for a user with no day before cutoff_day in
  -- the daily rollups or the pending deltas (whole). Once retention dropped part of a
  -- user's history, that user's lifetime tables keep what the merges wrote.
  return query
  select w.user_id, w.tz, w.anchor_day, w.cutoff_day, w.utc_cutoff_day,
         w.since = '-infinity'
           or (not exists (select from tally.user_daily d where d.user_id = w.user_id and d.day < w.cutoff_day)
               and not exists (select from tally.pending_deltas p
                                where p.user_id = w.user_id and (p.occurred_at at time zone w.tz)::date < w.cutoff_day))
    from (
      select u.user_id, coalesce(s.time_zone, 'UTC') as tz,
             coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1) as anchor_day,  -- as tally._period_anchor
             r.since,
             case when r.since = '-infinity' then '-infinity'::date
                  else (r.since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day,
             case when r.since = '-infinity' then '-infinity'::date
                  else (r.since at time zone 'UTC')::date + 1 end as utc_cutoff_day
        from (select only_user as user_id where only_user is not null
              union all
              select x.user_id from tally.rebuild_users() x where only_user is null) as u
       cross join (select tally._retained_since() as since) as r
        left join tally.user_settings s on s.user_id = u.user_id
    ) as w;
end
$$;

comment on function tally._rebuild_scope(text) is
  'For one user or every user tally.rebuild_users() lists: time zone, billing anchor, the first local and the first UTC day wholly inside the retained log, and whether the user''s whole history is retained (then lifetime tables are rebuilt and verified too) (internal).';
