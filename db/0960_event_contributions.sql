-- ============================================================================
-- What each retained log row contributes to the aggregates: the same rules the
-- insert trigger and the batch path apply when they write a delta. Used by
-- tally.verify and tally.rebuild to recompute aggregates from the log.
-- ============================================================================

create view tally.event_contributions as
select e.event_id, e.user_id, e.kind, e.occurred_at, e.attributes,
       case when e.status = 'reversed' then -1
            when e.status <> 'succeeded' or e.corrects_event_id is not null then 0 else 1 end as events,
       case when e.status = 'failed' then 1 else 0 end as failures,
       case when e.status in ('succeeded', 'reversed') then e.quantity else 0 end as quantity,
       case when e.status in ('succeeded', 'reversed') then coalesce(e.duration_ms, 0) else 0 end as duration_ms,
       case when e.duration_ms is null or e.status not in ('succeeded', 'reversed') then 0
            when e.status = 'reversed' then -1 when e.corrects_event_id is not null then 0 else 1 end as timed_events,
       case when e.status in ('succeeded', 'reversed') then e.cost else 0 end as cost,
       e.billable and e.status in ('succeeded', 'reversed') as billable,
       e.status = 'succeeded' and e.corrects_event_id is null as is_use,
       e.plan
  from tally.usage_events e;

comment on view tally.event_contributions is
  'Signed contribution of every retained log row (events, failures, amounts, billable, is_use), by the rules the insert trigger applies (internal; verify and rebuild recompute from it).';
