-- Platform totals per declared dimension and value (kind, voice, model, provider, plan, ...), from the lifetime rollups.
-- Refreshed by tally.refresh_analytics; read by tally.admin_totals.
create materialized view tally.admin_totals_mv as
select t.dimension,
       t.value,
       sum(t.events)::bigint       as events,
       sum(t.failures)::bigint     as failures,
       sum(t.quantity)             as quantity,
       sum(t.duration_ms)          as duration_ms,
       sum(t.timed_events)::bigint as timed_events,
       sum(t.cost)                 as cost,
       count(*) filter (where t.first_at is not null or t.failures > 0) as users
  from tally.user_totals t
 group by t.dimension, t.value;

comment on materialized view tally.admin_totals_mv is
  'Platform lifetime totals per dimension and value: events (net of reversals), failures, quantity, duration, cost and users (who used it or failed at it). From tally.user_totals, so it survives raw retention. Read through tally.admin_totals.';

create unique index admin_totals_mv_key on tally.admin_totals_mv (dimension, value);
