-- Users per step of a funnel inside [from_at, to_at) (of one plan, or all): the exact counts behind tally.admin_funnel.
-- Called by tally.admin_funnel and tally.admin_funnel_window (at call time) and tally.admin_funnel_mv (the declared funnels, at refresh).
create or replace function tally._funnel_counts(steps text[], from_at timestamptz, to_at timestamptz,
                                                only_plan text default null)
returns bigint[]
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  hi_day date := (to_at at time zone 'UTC')::date;
  users  text[];
  ats    timestamptz[];
  counts bigint[] := '{}'::bigint[];
  -- Once per call, not per step: a catalog lookup.
  distributed boolean := tally._is_distributed();
begin
  -- Step-1 candidates: users with a merged step-1 use on a day of the timeframe
  -- (an index range on (kind, day)), or a pending one in it. Only these users
  -- are looked at, so the cost follows the users active at step 1 in the
  -- timeframe, not the history or every user who ever reached a step.
  users := array(
    select d.user_id
      from tally.user_kind_days d
     where d.kind = steps[1]
       and d.day between (from_at at time zone 'UTC')::date and hi_day
       and d.last_at >= from_at and d.first_at < to_at
       and (only_plan is null or d.plan = only_plan)
    union
    select x.user_id
      from tally.pending_deltas x
     where x.is_use and x.kind = steps[1] and x.occurred_at >= from_at and x.occurred_at < to_at
       and (only_plan is null or coalesce(x.plan, '') = only_plan));
  ats := array_fill(from_at, array[cardinality(users)]);
  -- A journey inside the timeframe, greedily: step 1 at the user's earliest
  -- step-1 use in [from_at, to_at); step k at the earliest step-k use at or
  -- after step k - 1's time and before to_at. Taking the earliest time at each
  -- step finds an in-order journey whenever one exists, so a user counts at
  -- step k exactly when steps 1..k happened in order inside the timeframe
  -- (uses before from_at, such as an older first visit, play no part).
  -- Each step is one statement over all the users still on the journey.
  for k in 1 .. cardinality(steps) loop
    if cardinality(users) = 0 then
      counts := counts || 0::bigint;
      continue;
    end if;
    if distributed then
      -- Citus: one user at a time (a join of these arrays with the distributed
      -- step days would be planned as a join without the distribution column).
      select coalesce(array_agg(c.user_id), '{}'), coalesce(array_agg(f.t), '{}')
        into users, ats
        from unnest(users, ats) as c(user_id, at)
       cross join lateral (select tally._funnel_next(c.user_id, steps[k], c.at, to_at, only_plan) as t) f
       where f.t is not null;
    else
      select coalesce(array_agg(s.user_id), '{}'), coalesce(array_agg(s.t), '{}')
        into users, ats
        from (
          select x.user_id, min(x.t) as t
            from (
              -- Merged: per step day at or after the previous step's time, its
              -- first use when not before that time; otherwise that time falls
              -- inside the day's uses and the answer lies in [time, last_at]:
              -- read that stretch of the user's log (by the index on user and
              -- time). Where retention dropped it, last_at is the best known
              -- bound (a later, so stricter, step time). The earliest over the
              -- days (and plans in force) is the step's time.
              select c.user_id,
                     case when d.first_at >= c.at then d.first_at
                          else coalesce((select min(e.occurred_at)
                                           from tally.usage_events e
                                          where e.user_id = c.user_id
                                            and e.occurred_at >= c.at and e.occurred_at <= d.last_at
                                            and e.kind = steps[k] and e.status = 'succeeded'
                                            and e.corrects_event_id is null
                                            and (only_plan is null or coalesce(e.plan, '') = only_plan)),
                                        d.last_at)
                     end as t
                from unnest(users, ats) as c(user_id, at)
                join tally.user_kind_days d
                  on d.user_id = c.user_id and d.kind = steps[k]
                 and d.day >= (c.at at time zone 'UTC')::date and d.day <= hi_day
                 and d.last_at >= c.at
                 and (only_plan is null or d.plan = only_plan)
              union all
              -- Pending (not yet merged) uses: exact at commit.
              select c.user_id, p.occurred_at
                from unnest(users, ats) as c(user_id, at)
                join tally.pending_deltas p
                  on p.user_id = c.user_id and p.kind = steps[k] and p.is_use
                 and p.occurred_at >= c.at and p.occurred_at < to_at
                 and (only_plan is null or coalesce(p.plan, '') = only_plan)
            ) x
           group by x.user_id
          having min(x.t) < to_at
        ) s;
    end if;
    counts := counts || cardinality(users)::bigint;
  end loop;
  return counts;
end
$$;

comment on function tally._funnel_counts(text[], timestamptz, timestamptz, text) is
  'Users per step of a funnel inside [from_at, to_at): element k = the users with succeeded original events of steps 1..k inside the timeframe at non-decreasing times (with only_plan: recorded under that plan), from tally.user_kind_days plus pending deltas, exact at commit; no minimum group size applied (internal; tally.admin_funnel and tally.admin_funnel_mv call it).';
