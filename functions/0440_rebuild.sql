-- Rebuilds every table derived from the log (rollups, sessions, hours, admin sources) from the retained log: all users or one,
-- all dimensions or one (backfilling a newly declared dimension). Called by DBAs, `pgtally rebuild` and tally._sync_billing_anchor.
create or replace function tally.rebuild(user_id text default null, dimension text default null)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  recomputed  bigint;
  distributed boolean := tally._is_distributed();
  one_user    text;
  kept_starts date[];
begin
  if dimension is not null then
    perform tally._dimension_keys(dimension);  -- PT010 when not declared
  end if;
  if distributed and rebuild.user_id is null then
    -- Distributed by Citus: every statement below, filtered by one user, runs on that user's
    -- shard, while the set-wise forms over all users are joins Citus refuses. So all users
    -- are rebuilt one by one, in this one transaction (the keys of every user first, so that
    -- a user whose only rows were written past the insert trigger is listed too).
    perform tally._lock('merge');
    if dimension is null then
      perform tally.rebuild_keys(null);
    end if;
    recomputed := 0;
    for one_user in select u.user_id from tally.rebuild_users() u order by 1 loop
      recomputed := recomputed + tally.rebuild(one_user, dimension);
    end loop;
    return recomputed;
  end if;
  -- Merges wait; writers and readers do not (writers never touch the derived tables,
  -- readers switch to the rebuilt rows at commit).
  perform tally._lock('merge');
  -- Which log rows count depends on the exactly-once keys: reconcile them first (a
  -- dimension backfill leaves them alone).
  if dimension is null then
    perform tally.rebuild_keys(rebuild.user_id);
  end if;
  perform tally._prepare_merge_batch();

  -- The users and the part of each table the retained log wholly covers (tally._rebuild_scope,
  -- which tally.verify checks the same way): per-day tables from cutoff_day (local) or
  -- utc_cutoff_day (UTC) on, lifetime tables only for users whose whole history is retained.
  -- One user's scope is just that user (no scan of every user's keys).
  -- The billing period containing the first rebuilt day (straddle_start) starts
  -- before it. When the rollups already have that period (same bounds as before)
  -- it keeps its row; when they do not (the anchor or zone changed), it is counted
  -- from the retained log, i.e. only its days inside the log.
  perform 'PRAGMA:TABLE: _tally_rebuild_users (user_id text, tz text, anchor_day integer, cutoff_day date, utc_cutoff_day date, whole boolean, straddle_start date, straddle_kept boolean)';
  if not distributed then
    create temporary table _tally_rebuild_users on commit drop as
    select v.user_id, v.tz, v.anchor_day, v.cutoff_day, v.utc_cutoff_day, v.whole, v.straddle_start,
           v.straddle_start is not null
                and exists (select from tally.user_periods p
                             where p.user_id = v.user_id and p.period_start = v.straddle_start) as straddle_kept
      from (
        select sc.user_id, sc.tz, sc.anchor_day, sc.cutoff_day, sc.utc_cutoff_day, sc.whole,
               case when sc.cutoff_day <> '-infinity' then tally._period_start(sc.cutoff_day, sc.anchor_day) end as straddle_start
          from tally._rebuild_scope(rebuild.user_id) as sc
      ) as v;
  else
    -- Citus refuses the correlated subquery above, and ships a statement that names one
    -- user's shard to that shard whole (function calls included): the scope first, then the
    -- user's period starts by themselves (one user here: the distributed path goes user by user).
    create temporary table _tally_rebuild_users on commit drop as
    select sc.user_id, sc.tz, sc.anchor_day, sc.cutoff_day, sc.utc_cutoff_day, sc.whole,
           case when sc.cutoff_day <> '-infinity' then tally._period_start(sc.cutoff_day, sc.anchor_day) end as straddle_start,
           false as straddle_kept
      from tally._rebuild_scope(rebuild.user_id) as sc;
    kept_starts := array(select p.period_start from tally.user_periods p where p.user_id = rebuild.user_id);
    update pg_temp._tally_rebuild_users u
       set straddle_kept = u.straddle_start is not null and u.straddle_start = any (kept_starts);
  end if;
  create unique index on pg_temp._tally_rebuild_users (user_id);
  analyze pg_temp._tally_rebuild_users;

  -- One snapshot of what the derived tables must hold: the counted log rows (sign 1)
  -- minus what is still pending (sign -1): the next merge adds the pending deltas again.
  -- First and last times come from the log rows only (the merge's least/greatest of the
  -- pending ones changes nothing).
  perform 'PRAGMA:TABLE: _tally_rebuild_rows (user_id text, kind text, occurred_at timestamptz, attributes jsonb, events integer, failures integer, quantity bigint, duration_ms bigint, timed_events integer, cost numeric, billable boolean, is_use boolean, plan text, sign integer, local_at timestamp, day date, utc_day date, anchor_day integer, cutoff_day date, utc_cutoff_day date, whole boolean, straddle_start date, straddle_kept boolean)';
  create temporary table _tally_rebuild_rows on commit drop as
  select x.user_id, x.kind, x.occurred_at, x.attributes, x.events, x.failures, x.quantity, x.duration_ms,
         x.timed_events, x.cost, x.billable, x.is_use, x.plan, x.sign,
         x.occurred_at at time zone u.tz as local_at, (x.occurred_at at time zone u.tz)::date as day,
         (x.occurred_at at time zone 'UTC')::date as utc_day, u.anchor_day, u.cutoff_day, u.utc_cutoff_day, u.whole,
         u.straddle_start, u.straddle_kept
    from (
      select c.user_id, c.kind, c.occurred_at, c.attributes, c.events, c.failures, c.quantity, c.duration_ms,
             c.timed_events, c.cost, c.billable, c.is_use, c.plan, 1 as sign
        from tally._counted_events(rebuild.user_id) as c
      union all
      select p.user_id, p.kind, p.occurred_at, p.attributes, p.events, p.failures, p.quantity, p.duration_ms,
             p.timed_events, p.cost, p.billable, p.is_use, p.plan, -1
        from tally.pending_deltas p
       where rebuild.user_id is null or p.user_id = rebuild.user_id
    ) as x
    join pg_temp._tally_rebuild_users u on u.user_id = x.user_id;
  select count(*) into recomputed from pg_temp._tally_rebuild_rows r where r.sign = 1;

  -- ------------------------------------------------------------------------
  -- Lifetime, daily and billing-period rollups, through the merge's applier.
  -- ------------------------------------------------------------------------

  -- 1. Take the rebuilt days out of the daily rollups.
  delete from tally.user_daily d
   using pg_temp._tally_rebuild_users u
   where d.user_id = u.user_id and d.day >= u.cutoff_day
     and (rebuild.dimension is null or d.dimension = rebuild.dimension);

  -- 2. Billing periods that start inside the retained log (all-dimension rebuilds only).
  if dimension is null then
    delete from tally.user_periods p
     using pg_temp._tally_rebuild_users u
     where p.user_id = u.user_id and p.period_start >= u.cutoff_day;
  end if;

  -- 3. The batch: log rows minus pending deltas of the rebuilt days.
  insert into pg_temp._tally_merge
    (user_id, kind, occurred_at, attributes, events, failures, quantity, duration_ms, timed_events, cost, billable,
     is_use, local_at, day, anchor_day, plan)
  select r.user_id, r.kind, r.occurred_at, r.attributes, r.sign * r.events, r.sign * r.failures, r.sign * r.quantity,
         r.sign * r.duration_ms, r.sign * r.timed_events, r.sign * r.cost,
         r.billable and (tally._period_start(r.day, r.anchor_day) >= r.cutoff_day
                         or (tally._period_start(r.day, r.anchor_day) = r.straddle_start and not r.straddle_kept)),
         r.is_use and r.sign = 1, r.local_at, r.day, r.anchor_day, r.plan
    from pg_temp._tally_rebuild_rows r
   where r.day >= r.cutoff_day;

  -- The applier also adds the batch to lifetime totals; step 4 replaces them.
  perform tally._apply_rollups(dimension);

  -- 4. Lifetime totals are the sums of the daily rollups, which keep all history
  --    (also the days older than the retained log).
  delete from tally.user_totals t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and (rebuild.dimension is null or t.dimension = rebuild.dimension);
  insert into tally.user_totals
    (user_id, dimension, value, events, failures, quantity, duration_ms, timed_events, cost, first_at, last_at)
  select d.user_id, d.dimension, d.value, sum(d.events), sum(d.failures), sum(d.quantity), sum(d.duration_ms),
         sum(d.timed_events), sum(d.cost), min(d.first_at), max(d.last_at)
    from tally.user_daily d
    join pg_temp._tally_rebuild_users u on u.user_id = d.user_id
   where rebuild.dimension is null or d.dimension = rebuild.dimension
   group by d.user_id, d.dimension, d.value
   order by d.user_id, d.dimension, d.value;

  -- ------------------------------------------------------------------------
  -- The engagement and admin sources: recomputed here set-wise, by the rules of
  -- tally._apply_engagement and tally._apply_admin (signed: sums of sign * value, counts
  -- as sums of sign). No merge runs meanwhile, so plain inserts after the deletes.
  -- ------------------------------------------------------------------------

  -- Usage per UTC day, plan, dimension value and kind (the admin totals and leaderboards).
  delete from tally.user_daily_values t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and t.day >= u.utc_cutoff_day
     and (rebuild.dimension is null or t.dimension = rebuild.dimension);
  insert into tally.user_daily_values
    (user_id, day, plan, dimension, value, kind, events, succeeded, failures, quantity, duration_ms, timed_events, cost,
     billable_cost, first_at, last_at)
  select r.user_id, r.utc_day, coalesce(r.plan, ''), d.name, v.value, r.kind,
         sum(r.sign * r.events), coalesce(sum(r.sign) filter (where r.is_use), 0), sum(r.sign * r.failures),
         sum(r.sign * r.quantity), sum(r.sign * r.duration_ms), sum(r.sign * r.timed_events), sum(r.sign * r.cost),
         coalesce(sum(r.sign * r.cost) filter (where r.billable), 0),
         min(r.occurred_at) filter (where r.is_use and r.sign = 1),
         max(r.occurred_at) filter (where r.is_use and r.sign = 1)
    from pg_temp._tally_rebuild_rows r
   cross join tally.dimensions d
   cross join lateral (select tally._dimension_value(d.keys, r.kind, r.attributes, r.plan) as value) v
   where r.utc_day >= r.utc_cutoff_day and v.value is not null
     and (rebuild.dimension is null or d.name = rebuild.dimension)
   group by 1, 2, 3, 4, 5, 6;

  if dimension is not null then
    drop table pg_temp._tally_rebuild_rows;
    drop table pg_temp._tally_rebuild_users;
    return recomputed;  -- a dimension backfill leaves the other tables alone
  end if;

  -- Funnel steps: first and last succeeded original per kind, UTC day and plan.
  delete from tally.user_kind_days t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and t.day >= u.utc_cutoff_day;
  insert into tally.user_kind_days (user_id, kind, day, plan, first_at, last_at)
  select r.user_id, r.kind, r.utc_day, coalesce(r.plan, ''), min(r.occurred_at), max(r.occurred_at)
    from pg_temp._tally_rebuild_rows r
   where r.utc_day >= r.utc_cutoff_day and r.is_use and r.sign = 1
   group by 1, 2, 3, 4;

  -- Operational counters: attempts, durations of timed successes, net billable cost.
  delete from tally.user_daily_ops t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and t.day >= u.utc_cutoff_day;
  insert into tally.user_daily_ops
    (user_id, day, plan, kind, format, succeeded, failed, timed_events, duration_ms, billable_cost)
  select r.user_id, r.utc_day, coalesce(r.plan, ''), r.kind, coalesce(left(r.attributes ->> 'format', 64), ''),
         coalesce(sum(r.sign) filter (where r.is_use), 0), sum(r.sign * r.failures),
         coalesce(sum(r.sign) filter (where r.is_use and r.timed_events = 1), 0),
         coalesce(sum(r.sign * r.duration_ms) filter (where r.is_use and r.timed_events = 1), 0),
         coalesce(sum(r.sign * r.cost) filter (where r.billable), 0)
    from pg_temp._tally_rebuild_rows r
   where r.utc_day >= r.utc_cutoff_day and (r.is_use or r.failures <> 0 or (r.billable and r.cost <> 0))
   group by 1, 2, 3, 4, 5;

  -- Duration histograms of timed successes.
  delete from tally.user_daily_durations t
   using pg_temp._tally_rebuild_users u
   where t.user_id = u.user_id and t.day >= u.utc_cutoff_day;
  insert into tally.user_daily_durations (user_id, day, plan, kind, format, bucket, events)
  select r.user_id, r.utc_day, coalesce(r.plan, ''), r.kind, coalesce(left(r.attributes ->> 'format', 64), ''),
         tally._duration_bucket(r.duration_ms), sum(r.sign)
    from pg_temp._tally_rebuild_rows r
   where r.utc_day >= r.utc_cutoff_day and r.is_use and r.timed_events = 1
   group by 1, 2, 3, 4, 5, 6;

  -- Hour-of-week histogram in the user's current zone (lifetime: whole users only).
  delete from tally.user_hours h
   using pg_temp._tally_rebuild_users u
   where h.user_id = u.user_id and u.whole;
  insert into tally.user_hours (user_id, how, events, failures, quantity, duration_ms, cost)
  select r.user_id, ((extract(isodow from r.local_at)::integer - 1) * 24 + extract(hour from r.local_at)::integer)::smallint,
         sum(r.sign * r.events), sum(r.sign * r.failures), sum(r.sign * r.quantity), sum(r.sign * r.duration_ms),
         sum(r.sign * r.cost)
    from pg_temp._tally_rebuild_rows r
   where r.whole
   group by 1, 2;

  -- Sessions (lifetime: whole users only).
  delete from tally.user_sessions s
   using pg_temp._tally_rebuild_users u
   where s.user_id = u.user_id and u.whole;
  insert into tally.user_sessions (user_id, session_id, events, explicit_events, explicit_ms, first_at, last_end_at)
  select r.user_id, k.session_id, sum(r.sign * r.events),
         sum(case when r.kind = 'session' then r.sign * r.events else 0 end),
         sum(case when r.kind = 'session' then r.sign * r.duration_ms else 0 end),
         min(r.occurred_at) filter (where r.is_use and r.sign = 1),
         max(r.occurred_at + r.duration_ms * interval '1 millisecond') filter (where r.is_use and r.sign = 1)
    from pg_temp._tally_rebuild_rows r
   cross join lateral (select tally._session_key(r.kind, r.attributes, r.occurred_at) as session_id) k
   where r.whole and k.session_id is not null
   group by 1, 2;

  drop table pg_temp._tally_rebuild_rows;
  drop table pg_temp._tally_rebuild_users;
  return recomputed;
end
$$;

comment on function tally.rebuild(text, text) is
  'Rebuilds every table derived from the log for one user or all, from the retained log: lifetime, daily and billing-period rollups, usage per UTC day and dimension value, funnel days, operational counters, duration histograms, and (for users whose whole history is retained) the hour-of-week histogram and sessions; first reconciles the exactly-once keys (tally.rebuild_keys). With dimension: backfills that one dimension''s rollups only (e.g. after declare_dimension). Days older than the retained log keep their rows. Writers are not blocked; merges wait. On a distributed install (Citus) all users are rebuilt one by one in the one transaction. Returns the number of retained log rows it recomputed from.';
