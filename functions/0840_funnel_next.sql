-- The earliest succeeded original event of a kind by a user in [from_at, to_at) (of one plan in force, or any), or NULL: one funnel step.
-- Called by tally.admin_funnel only (per user and step); reads the days of the timeframe, never the whole history.
create or replace function tally._funnel_next(user_id text, kind text, from_at timestamptz, to_at timestamptz,
                                              only_plan text default null)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return (
  select t
    from (
      select least(
        -- Merged: the first day at or after from_at with a use at or after from_at.
        -- Its first use is the answer when it is not before from_at; otherwise
        -- from_at falls inside that day's uses and the answer lies in
        -- [from_at, last_at]: read that stretch of the user's log (by the index
        -- on user and time). Where retention dropped it, last_at is the best
        -- known bound (a later, so stricter, step time). A day has one row per
        -- plan in force: with no plan filter they are taken together.
        (select case when min(d.first_at) >= _funnel_next.from_at then min(d.first_at)
                     else coalesce((select min(e.occurred_at)
                                      from tally.usage_events e
                                     where e.user_id = _funnel_next.user_id
                                       and e.occurred_at >= _funnel_next.from_at and e.occurred_at <= max(d.last_at)
                                       and e.kind = _funnel_next.kind and e.status = 'succeeded'
                                       and e.corrects_event_id is null
                                       and (only_plan is null or coalesce(e.plan, '') = only_plan)),
                                   min(case when d.first_at >= _funnel_next.from_at then d.first_at else d.last_at end))
                end
           from tally.user_kind_days d
          where d.user_id = _funnel_next.user_id and d.kind = _funnel_next.kind
            and d.day >= (_funnel_next.from_at at time zone 'UTC')::date
            and d.day <= (_funnel_next.to_at at time zone 'UTC')::date
            and d.last_at >= _funnel_next.from_at
            and (only_plan is null or d.plan = only_plan)
          group by d.day
          order by d.day
          limit 1),
        -- Pending (not yet merged) uses: exact at commit.
        (select min(p.occurred_at)
           from tally.pending_deltas p
          where p.user_id = _funnel_next.user_id and p.kind = _funnel_next.kind and p.is_use
            and p.occurred_at >= _funnel_next.from_at and p.occurred_at < _funnel_next.to_at
            and (only_plan is null or coalesce(p.plan, '') = only_plan))) as t
    ) x
   where x.t < _funnel_next.to_at
  );
end
$$;

comment on function tally._funnel_next(text, text, timestamptz, timestamptz, text) is
  'Earliest succeeded original event of a kind by a user in [from_at, to_at) (NULL when none), only of events recorded under only_plan when given: from tally.user_kind_days plus pending deltas, reading the user''s log only within one day when from_at falls between that day''s first and last use (internal; called by tally.admin_funnel).';
