-- Rebuilds the lifetime, daily and billing-period rollups from the retained log: all users or one,
-- all dimensions or one (backfilling a newly declared dimension). Called by DBAs and `pgtally rebuild`.
create or replace function tally.rebuild(user_id text default null, dimension text default null)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  since    timestamptz;
  recomputed bigint;
begin
  if dimension is not null then
    perform tally._dimension_keys(dimension);  -- PT010 when not declared
  end if;
  -- Merges wait; writers and readers do not (writers never touch the rollups,
  -- readers switch to the rebuilt rows at commit).
  perform tally._lock('merge');
  since := tally._retained_since();
  perform tally._prepare_merge_batch();

  -- Each user's rebuilt days start at the first local day wholly inside the retained
  -- log; older days (whose raw events retention dropped) are kept as they are.
  -- One user's scope is just that user (no scan of every user's keys).
  -- The billing period containing the first rebuilt day (straddle_start) starts
  -- before it. When the rollups already have that period (same bounds as before)
  -- it keeps its row; when they do not (the anchor or zone changed), it is counted
  -- from the retained log, i.e. only its days inside the log.
  create temporary table _tally_rebuild_scope on commit drop as
  select v.user_id, v.tz, v.anchor_day, v.cutoff_day, v.straddle_start,
         v.straddle_start is not null
              and exists (select from tally.user_periods p
                           where p.user_id = v.user_id and p.period_start = v.straddle_start) as straddle_kept
    from (
      select w.user_id, w.tz, w.anchor_day, w.cutoff_day, case when w.cutoff_day <> '-infinity' then tally._period_start(w.cutoff_day, w.anchor_day) end as straddle_start
        from (
          select u.user_id, coalesce(s.time_zone, 'UTC') as tz,
                 coalesce(s.subscription_anchor_day, s.billing_anchor_day, 1) as anchor_day,
                 case when since = '-infinity' then '-infinity'::date
                      else (since at time zone coalesce(s.time_zone, 'UTC'))::date + 1 end as cutoff_day
            from (select rebuild.user_id as user_id where rebuild.user_id is not null
                  union
                  select k.user_id from tally.event_keys k where rebuild.user_id is null
                  union
                  select t.user_id from tally.user_totals t where rebuild.user_id is null) as u
            left join tally.user_settings s on s.user_id = u.user_id
        ) as w
    ) as v;
  create unique index on pg_temp._tally_rebuild_scope (user_id);
  analyze pg_temp._tally_rebuild_scope;

  -- 1. Take the rebuilt days out of the daily rollups.
  delete from tally.user_daily d
   using pg_temp._tally_rebuild_scope sc
   where d.user_id = sc.user_id and d.day >= sc.cutoff_day
     and (rebuild.dimension is null or d.dimension = rebuild.dimension);

  -- 2. Billing periods that start inside the retained log (all-dimension rebuilds only).
  if dimension is null then
    delete from tally.user_periods p
     using pg_temp._tally_rebuild_scope sc
     where p.user_id = sc.user_id and p.period_start >= sc.cutoff_day;
  end if;

  -- 3. One snapshot: the log's contributions minus what is still pending (the
  --    next merge adds the pending deltas again; min/max times are idempotent).
  insert into pg_temp._tally_merge
  select x.user_id, x.kind, x.occurred_at, x.attributes, x.events, x.failures, x.quantity, x.duration_ms,
         x.timed_events, x.cost,
         x.billable and (tally._period_start((x.occurred_at at time zone sc.tz)::date, sc.anchor_day) >= sc.cutoff_day
                         or (tally._period_start((x.occurred_at at time zone sc.tz)::date, sc.anchor_day) = sc.straddle_start
                             and not sc.straddle_kept)),
         x.is_use, x.occurred_at at time zone sc.tz, (x.occurred_at at time zone sc.tz)::date, sc.anchor_day
    from (
      select c.user_id, c.kind, c.occurred_at, c.attributes, c.events, c.failures, c.quantity, c.duration_ms,
             c.timed_events, c.cost, c.billable, c.is_use
        from tally.event_contributions c
       where rebuild.user_id is null or c.user_id = rebuild.user_id
      union all
      select p.user_id, p.kind, p.occurred_at, p.attributes, -p.events, -p.failures, -p.quantity, -p.duration_ms,
             -p.timed_events, -p.cost, p.billable, false
        from tally.pending_deltas p
       where rebuild.user_id is null or p.user_id = rebuild.user_id
    ) as x
    join pg_temp._tally_rebuild_scope sc on sc.user_id = x.user_id
   where (x.occurred_at at time zone sc.tz)::date >= sc.cutoff_day;
  get diagnostics recomputed = row_count;

  -- The applier also adds the batch to lifetime totals; step 4 replaces them.
  perform tally._apply_rollups(dimension);

  -- 4. Lifetime totals are the sums of the daily rollups, which keep all history
  --    (also the days older than the retained log).
  delete from tally.user_totals t
   using pg_temp._tally_rebuild_scope sc
   where t.user_id = sc.user_id and (rebuild.dimension is null or t.dimension = rebuild.dimension);
  insert into tally.user_totals
    (user_id, dimension, value, events, failures, quantity, duration_ms, timed_events, cost, first_at, last_at)
  select d.user_id, d.dimension, d.value, sum(d.events), sum(d.failures), sum(d.quantity), sum(d.duration_ms),
         sum(d.timed_events), sum(d.cost), min(d.first_at), max(d.last_at)
    from tally.user_daily d
    join pg_temp._tally_rebuild_scope sc on sc.user_id = d.user_id
   where rebuild.dimension is null or d.dimension = rebuild.dimension
   group by d.user_id, d.dimension, d.value
   order by d.user_id, d.dimension, d.value;
  drop table pg_temp._tally_rebuild_scope;
  return recomputed;
end
$$;

comment on function tally.rebuild(text, text) is
  'Rebuilds lifetime, daily and billing-period rollups from the retained log for one user or all, for one dimension (e.g. backfill a newly declared one) or all; days older than the retained log keep their rollups. Writers are not blocked; merges wait. Returns the number of log rows recomputed (minus pending deltas).';
