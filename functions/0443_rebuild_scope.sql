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
declare
  since timestamptz;
  users text[];
begin
  -- Per-day tables are recomputed from the first day wholly inside the retained log:
  -- cutoff_day in the user's zone (user_daily, user_periods), utc_cutoff_day for the
  -- tables keyed by UTC day. Older days keep what the merges wrote.
  -- Lifetime tables (user_hours, user_sessions: a session may span any time) cannot be
  -- split by day: they are recomputed only for a user with no day before cutoff_day in
  -- the daily rollups or the pending deltas (whole). Once retention dropped part of a
  -- user's history, that user's lifetime tables keep what the merges wrote.
  if tally._is_distributed() then
    -- Citus refuses the correlated subqueries below (their outer side is a subquery, not a
    -- distributed table) and the join of the users' list with user_settings. Each table is
    -- read by itself instead (filtered by the one user, or grouped by user_id: pushed down
    -- to the shards) and the pieces are joined on the coordinator. The first rollup day and
    -- the first pending delta per user decide the same as the not-exists tests: the local
    -- day of the earliest delta is the earliest local day. The start of the retained log is
    -- read first: a query routed to one user's shard cannot read the coordinator's tables.
    since := tally._retained_since();
    users := case when only_user is not null then array[only_user]
                  else array(select x.user_id from tally.rebuild_users() x) end;
    return query
    with settings as materialized (
      select s.user_id, s.time_zone, s.subscription_anchor_day, s.billing_anchor_day
        from tally.user_settings s
       where only_user is null or s.user_id = only_user
    ), first_day as materialized (
      select d.user_id, min(d.day) as day
        from tally.user_daily d
       where only_user is null or d.user_id = only_user
       group by d.user_id
    ), first_pending as materialized (
      select p.user_id, min(p.occurred_at) as occurred_at
        from tally.pending_deltas p
       where only_user is null or p.user_id = only_user
       group by p.user_id
    ), w as (
      select u.user_id, coalesce(s.time_zone, 'UTC') as tz,
             coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1) as anchor_day,  -- as tally._period_anchor
             r.since,
             case when r.since = '-infinity' then '-infinity'::date
                  else (r.since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day,
             case when r.since = '-infinity' then '-infinity'::date
                  else (r.since at time zone 'UTC')::date + 1 end as utc_cutoff_day
        from unnest(users) as u (user_id)
       cross join (select since) as r
        left join settings s on s.user_id = u.user_id
    )
    select w.user_id, w.tz, w.anchor_day, w.cutoff_day, w.utc_cutoff_day,
           w.since = '-infinity'
             or (coalesce(fd.day >= w.cutoff_day, true)
                 and coalesce((fp.occurred_at at time zone w.tz)::date >= w.cutoff_day, true))
      from w
      left join first_day fd on fd.user_id = w.user_id
      left join first_pending fp on fp.user_id = w.user_id;
    return;
  end if;
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
