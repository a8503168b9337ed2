-- Platform totals per dimension, local day and value: the trend series (events per day per kind, voice, model, ...).
-- Refreshed by tally.refresh_analytics; read by tally.admin_trend and tally.admin_week_over_week.
create materialized view tally.admin_daily_mv as
select d.dimension,
       d.day,
       d.value,
       sum(d.events)::bigint      as events,
       sum(d.failures)::bigint    as failures,
       sum(d.quantity)            as quantity,
       sum(d.duration_ms)         as duration_ms,
       sum(d.cost)                as cost,
       count(*) filter (where d.first_at is not null or d.failures > 0) as users
  from tally.user_daily d
 group by d.dimension, d.day, d.value;

comment on materialized view tally.admin_daily_mv is
  'Platform totals per dimension, day (each user''s local day) and value: events, failures, quantity, duration, cost and users active with that value that day. From tally.user_daily. Read through tally.admin_trend.';

create unique index admin_daily_mv_key on tally.admin_daily_mv (dimension, day, value);
