-- Anonymized peer distributions: per kind and month, cut points of the users' billing-period usage, no user ids.
-- Refreshed by tally.refresh_analytics; read by tally.peer_percentile (readers may select it: it holds no per-user row).
--
-- A month and kind with n users (a user counts once, with the usage of the
-- billing periods starting in that month) publishes a cut point at p % for p
-- in step, 2 step, ..., 100 - step, where step is the smallest of 1, 2, 4, 5,
-- 10, 20, 25, 50 with step * n >= 100 * k (k = the minimum group size). The
-- cut point at p is the midpoint of the r-th and (r+1)-th smallest usage,
-- r = ceil(p * n / 100). So every cut point has at least k users on each side
-- (the smallest and largest usage, and any near them, are never published),
-- and with k >= 2 two cut points never share a user: no cut point is one
-- user's exact usage (unless several users used exactly that much) and no two
-- can be solved together for one user's usage. A group needs 2k users for its
-- median; smaller groups publish nothing.
create materialized view tally.peer_distribution_mv as
with settings as materialized (
  -- Once per refresh, not once per row.
  select tally._analytics_min_group_size() as k
), per_user as (
  select p.kind, date_trunc('month', p.period_start::timestamp)::date as month, sum(p.quantity) as quantity
    from tally.user_periods p
   group by p.kind, date_trunc('month', p.period_start::timestamp)::date, p.user_id
  having sum(p.quantity) > 0
), ranked as (
  select u.kind, u.month, u.quantity, lead(u.quantity) over w as next_quantity,
         row_number() over w as r, count(*) over (partition by u.kind, u.month) as n
    from per_user u
  window w as (partition by u.kind, u.month order by u.quantity)
), stepped as (
  select x.*,
         case when x.n >= 100 * s.k then 1 when 2 * x.n >= 100 * s.k then 2 when 4 * x.n >= 100 * s.k then 4
              when 5 * x.n >= 100 * s.k then 5 when 10 * x.n >= 100 * s.k then 10 when 20 * x.n >= 100 * s.k then 20
              when 25 * x.n >= 100 * s.k then 25 when 50 * x.n >= 100 * s.k then 50 end as step
    from ranked x
   cross join settings s
), placed as (
  -- One pass, no self-join: the r-th user carries the cut point at the one
  -- multiple p of the step (if any) with r = ceil(p * n / 100), i.e. the
  -- largest multiple with p * n <= 100 r, when also p * n > 100 (r - 1).
  select x.*, ((100 * x.r) / (x.n * x.step)) * x.step as p
    from stepped x
   where x.step is not null
)
select x.kind, x.month, x.p::smallint as percentile, trim_scale((x.quantity + x.next_quantity) / 2) as cut_point,
       x.n as peers, now() as refreshed_at
  from placed x
 where x.p between x.step and 100 - x.step
   and x.p * x.n > 100 * (x.r - 1);

comment on materialized view tally.peer_distribution_mv is
  'Anonymized usage distribution per kind and month in which billing periods start: percentile p, cut point (the midpoint of two neighbouring users'' usage with at least p % of the users at or below the lower one), peers (users with usage), refreshed_at. Only groups of at least twice the minimum group size, with at least the minimum group size of users on each side of every cut point, so neither the smallest nor the largest usage is published, nor any one user''s exact usage (unless several users used exactly as much). Readable by readers; read through tally.peer_percentile.';

create unique index peer_distribution_mv_key on tally.peer_distribution_mv (kind, month, percentile);
