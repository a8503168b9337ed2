-- Hour-of-week heatmap of one user's lifetime activity in local time: all 168 hours, Monday 00:00 first.
-- Called by usage pages (patterns) and the Python client's hour_of_week_heatmap(); exact at commit (rollup + pending deltas).
create or replace function tally.hour_of_week_heatmap(user_id text)
returns table (
  how         smallint,
  weekday     smallint,
  hour        smallint,
  events      bigint,
  failures    bigint,
  quantity    numeric,
  duration_ms numeric,
  cost        numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  -- Read before the query: on Citus it runs on the user's shard, where it may not call
  -- functions that read other distributed tables.
  user_tz    text := tally._user_time_zone(hour_of_week_heatmap.user_id);
  user_mixed boolean := tally._mixed_units(hour_of_week_heatmap.user_id);
begin
  return query
  with x as (
    select h.how, h.events, h.failures, h.quantity, h.duration_ms, h.cost
      from tally.user_hours h
     where h.user_id = hour_of_week_heatmap.user_id
    union all
    select ((extract(isodow from l.local_at)::integer - 1) * 24 + extract(hour from l.local_at)::integer)::smallint,
           l.events, l.failures, l.quantity, l.duration_ms, l.cost
      from (select p.occurred_at at time zone user_tz as local_at,
                   p.events, p.failures, p.quantity, p.duration_ms, p.cost
              from tally.pending_deltas p
             where p.user_id = hour_of_week_heatmap.user_id) as l
  )
  select g.how::smallint, (g.how / 24 + 1)::smallint, (g.how % 24)::smallint,
         coalesce(sum(x.events), 0)::bigint, coalesce(sum(x.failures), 0)::bigint,
         -- quantities of several units do not add: NULL
         case when not bool_or(mx.mixed) then coalesce(sum(x.quantity), 0) end,
         coalesce(sum(x.duration_ms), 0), coalesce(sum(x.cost), 0)
    from generate_series(0, 167) as g(how)
   cross join (select user_mixed as mixed) as mx
    left join x on x.how = g.how
   group by g.how
   order by g.how;
end
$$;

comment on function tally.hour_of_week_heatmap(text) is
  'Lifetime activity of a user per local hour of the week: 168 rows, how = (weekday - 1) * 24 + hour with weekday 1 = Monday; events, failures, quantity, duration, cost. Exact at commit.';
