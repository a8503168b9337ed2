-- Records the threshold alerts (80% and 100% of the plan limit) the merge batch's billable usage crossed, once each.
-- Called by tally._apply_rollups right after it adds the batch to tally.user_periods (every merge, rebuild and re-bucketing).
create or replace function tally._record_quota_alerts()
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  recorded integer;
  k_user   text;
  k_start  date;
  k_kind   text;
  k_at     text;
begin
  -- The (user, billing period, kind) keys the batch touched, with the plan in force at the
  -- batch's latest usage of them; their merged period totals were just updated. An alert is
  -- a fact about the merged total reaching a threshold: the primary key makes a second
  -- recording of the same user, period, kind and threshold a no-op, whatever merges,
  -- rebuilds or concurrent sessions run.
  if tally._is_distributed() then
    -- Citus: tally.plan_at reads a distributed table, which a statement that already wrote the
    -- user's shards in this transaction may not nest; look the plans up one key at a time first.
    truncate pg_temp._tally_alert_keys;  -- created by tally._prepare_merge_batch
    insert into pg_temp._tally_alert_keys
    select m.user_id, tally._period_start(m.day, m.anchor_day), m.kind, max(m.anchor_day), max(m.occurred_at)::text
      from pg_temp._tally_merge m
     where m.billable
     group by m.user_id, tally._period_start(m.day, m.anchor_day), m.kind;
    for k_user, k_start, k_kind, k_at in select a.user_id, a.period_start, a.kind, a.plan from pg_temp._tally_alert_keys a loop
      update pg_temp._tally_alert_keys a set plan = tally.plan_at(k_user, k_at::timestamptz)
       where a.user_id = k_user and a.period_start = k_start and a.kind = k_kind;
    end loop;
    insert into tally.quota_alerts (user_id, period_start, kind, threshold, period_end, plan, monthly_limit, quantity)
    select t.user_id, t.period_start, t.kind, th.threshold, tally._period_end(t.period_start, t.anchor_day), t.plan,
           l.monthly_limit, p.quantity
      from pg_temp._tally_alert_keys t
      join tally.plan_limits l on l.plan = t.plan and l.kind = t.kind
      join tally.user_periods p on p.user_id = t.user_id and p.period_start = t.period_start and p.kind = t.kind
     cross join (values (80), (100)) as th (threshold)
     where p.quantity > 0 and p.quantity * 100 >= l.monthly_limit::numeric * th.threshold
     order by t.user_id, t.period_start, t.kind, th.threshold
    on conflict on constraint quota_alerts_pkey do nothing;
    get diagnostics recorded = row_count;
    return recorded;
  end if;
  insert into tally.quota_alerts (user_id, period_start, kind, threshold, period_end, plan, monthly_limit, quantity)
  select t.user_id, t.period_start, t.kind, th.threshold, tally._period_end(t.period_start, t.anchor_day), t.plan,
         l.monthly_limit, p.quantity
    from (
      select m.user_id, tally._period_start(m.day, m.anchor_day) as period_start, m.kind,
             max(m.anchor_day) as anchor_day, tally.plan_at(m.user_id, max(m.occurred_at)) as plan
        from pg_temp._tally_merge m
       where m.billable
       group by m.user_id, tally._period_start(m.day, m.anchor_day), m.kind
    ) as t
    join tally.plan_limits l on l.plan = t.plan and l.kind = t.kind
    join tally.user_periods p on p.user_id = t.user_id and p.period_start = t.period_start and p.kind = t.kind
   cross join (values (80), (100)) as th (threshold)
   where p.quantity > 0 and p.quantity * 100 >= l.monthly_limit::numeric * th.threshold
   order by t.user_id, t.period_start, t.kind, th.threshold
  on conflict on constraint quota_alerts_pkey do nothing;
  get diagnostics recorded = row_count;
  return recorded;
end
$$;

comment on function tally._record_quota_alerts() is
  'Merge applier: for every (user, billing period, kind) of the batch pg_temp._tally_merge, records in tally.quota_alerts each threshold (80 and 100 percent of the limit of the plan in force at the batch''s latest usage) the merged billable quantity has reached, at most once per user, period, kind and threshold; returns how many it recorded (internal).';
