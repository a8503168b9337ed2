-- Paying users (of one plan, or any) per UTC day and in the 7 and 30 days ending each day, from the subscriptions, for a range of days.
-- Called by tally.admin_active_users (the series behind the "paying" trend).
create or replace function tally._paying_users_by_day(from_day date, to_day date, only_plan text default null)
returns table (day date, paying_users bigint, paying_users_7d bigint, paying_users_30d bigint)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return query
  -- Each paid subscription is in force on the UTC days [a, b]; a user counts in the
  -- n-day window ending d when one of their subscriptions has a <= d < b + n. Per
  -- user, sorted by a, the pieces [a, least(running max of b + n, next a)) are
  -- disjoint and cover exactly those days, so a running sum of +1 at starts and -1
  -- at ends counts distinct users per day and window in one pass (no self-join).
  -- Days are clamped to the range (and the 29 days before it, for the windows).
  with subs as (
    select s.user_id,
           greatest((s.started_at at time zone 'UTC')::date, _paying_users_by_day.from_day - 29) as a,
           least(coalesce(((s.ended_at - interval '1 microsecond') at time zone 'UTC')::date, _paying_users_by_day.to_day),
                 _paying_users_by_day.to_day) as b
      from tally.subscriptions s
     where s.monthly_price > 0
       and s.started_at < (_paying_users_by_day.to_day + 1)::timestamp at time zone 'UTC'
       and (s.ended_at is null or s.ended_at > (_paying_users_by_day.from_day - 29)::timestamp at time zone 'UTC')
       and (only_plan is null or s.plan = only_plan)
  ), spans as (
    select u.a,
           max(u.b) over (partition by u.user_id order by u.a, u.b rows unbounded preceding) as b_max,
           lead(u.a) over (partition by u.user_id order by u.a, u.b) as next_a
      from subs u
  ), changes (day, d1, d7, d30) as (
    select x.a, 1, 1, 1 from spans x
    union all
    select least(x.b_max + 1, coalesce(x.next_a, x.b_max + 1)), -1, 0, 0 from spans x
    union all
    select least(x.b_max + 7, coalesce(x.next_a, x.b_max + 7)), 0, -1, 0 from spans x
    union all
    select least(x.b_max + 30, coalesce(x.next_a, x.b_max + 30)), 0, 0, -1 from spans x
  ), deltas as (
    select c.day, sum(c.d1) as d1, sum(c.d7) as d7, sum(c.d30) as d30
      from changes c
     group by c.day
  ), running as (
    select g.day::date as day,
           sum(coalesce(c.d1, 0)) over w as d1, sum(coalesce(c.d7, 0)) over w as d7,
           sum(coalesce(c.d30, 0)) over w as d30
      from generate_series((_paying_users_by_day.from_day - 29)::timestamp, _paying_users_by_day.to_day::timestamp,
                           interval '1 day') as g (day)
      left join deltas c on c.day = g.day::date
    window w as (order by g.day)
  )
  select r.day, r.d1::bigint, r.d7::bigint, r.d30::bigint
    from running r
   where r.day >= _paying_users_by_day.from_day
   order by r.day;
end
$$;

comment on function tally._paying_users_by_day(date, date, text) is
  'Per UTC day of [from_day, to_day]: distinct users with a subscription at monthly_price > 0 (to only_plan when given) in force at some moment of that day, and of the 7 and 30 days ending it (internal; read by tally.admin_active_users).';
