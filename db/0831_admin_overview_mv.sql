-- Platform headline figures (one row): users, events, attempts and success rate, cost (paying users are read live).
-- Refreshed by tally.refresh_analytics; read by tally.admin_overview.
create materialized view tally.admin_overview_mv as
with per_user as (
  select t.user_id, sum(t.events) as events, sum(t.failures) as failures, sum(t.duration_ms) as duration_ms,
         sum(t.cost) as cost, bool_or(t.first_at is not null or t.failures > 0) as active,
         min(t.first_at) as first_at, max(t.last_at) as last_at
    from tally.user_totals t
   where t.dimension = 'kind'
   group by t.user_id
), ops as (
  select sum(o.succeeded) as succeeded, sum(o.failed) as failed, sum(o.billable_cost) as billable_cost
    from tally.user_daily_ops o
), users as (
  select count(*) filter (where p.active) as users, coalesce(sum(p.events), 0) as events,
         coalesce(sum(p.failures), 0) as failures, coalesce(sum(p.duration_ms), 0) as duration_ms,
         coalesce(sum(p.cost), 0) as cost, min(p.first_at) as first_at, max(p.last_at) as last_at
    from per_user p
), attempts as (
  select coalesce(sum(o.succeeded), 0) as succeeded, coalesce(sum(o.failed), 0) as failed,
         coalesce(sum(o.billable_cost), 0) as billable_cost
    from ops o
)
select 1 as id, u.users::bigint, u.events::bigint, a.succeeded::bigint, u.failures::bigint,
       round(100.0 * a.succeeded / nullif(a.succeeded + a.failed, 0), 2) as success_rate,
       u.duration_ms, u.cost, a.billable_cost, u.first_at, u.last_at
  from users u cross join attempts a;

comment on materialized view tally.admin_overview_mv is
  'Platform headline figures, one row: users, events (net of reversals), succeeded and failed attempts, success rate %, total duration, cost, billable cost, first and last use. Read through tally.admin_overview, which adds the paying users from the subscriptions at call time.';

create unique index admin_overview_mv_key on tally.admin_overview_mv (id);
