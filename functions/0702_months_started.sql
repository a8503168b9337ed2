-- Number of billing months that start in [from_at, to_at): k >= 0 with from_at + k months < to_at (local timestamps).
-- Called by tally.subscription_summary (months subscribed and revenue).
create or replace function tally._months_started(from_at timestamp, to_at timestamp)
returns integer
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select case
    when to_at is null or from_at is null or to_at <= from_at then 0
    else x.d + case when from_at + make_interval(months => x.d) < to_at then 1 else 0 end
  end
    from (select ((extract(year from to_at) - extract(year from from_at)) * 12
                  + extract(month from to_at) - extract(month from from_at))::integer as d) as x
$$;

comment on function tally._months_started(timestamp, timestamp) is
  'How many monthly billing cycles begin in [from_at, to_at) when the first begins at from_at (month arithmetic clamps to month ends) (internal).';
