-- Short plain-language insights with numbers for one user ("tts usage is up 40% this month so far").
-- Called by account pages and the Python client's usage_insights(); built only from the other read functions.
create or replace function tally.usage_insights(user_id text, at timestamptz default now())
returns table (
  code    text,
  subject text,
  message text,
  value   numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (at at time zone tally._user_time_zone(user_id))::date;
begin
  -- In order: month trend per kind (top 3 kinds this month, |delta| >= 5%), streak,
  -- favourite voice, quota warnings, anomaly of today or yesterday, peer
  -- percentile (from the anonymized distribution, only with at least 10 peers).
  return query
  with trends as (
    select k.value as kind, c.current_value, c.previous_value, c.delta_pct
      -- Kinds count in different units, so the top kinds are the ones with the most events.
      from (select t.value
              from tally.daily_totals(usage_insights.user_id, 'kind', date_trunc('month', today::timestamp)::date, today) t
             group by t.value
            having sum(t.quantity) > 0
             order by sum(t.events) desc, t.value
             limit 3) as k
     cross join lateral tally.usage_comparison(usage_insights.user_id, 'month', 'quantity', k.value, false, 5,
                                               usage_insights.at) c
     where c.delta_pct is not null and abs(c.delta_pct) >= 5
  ), profile as (
    select * from tally.engagement_profile(usage_insights.user_id, usage_insights.at)
  ), voice as (
    -- The favourite value of the dimension featured by the user's audio kinds (voice for text to speech).
    select f.dimension, v.value, v.duration_ms
      from (select r.featured_dimension as dimension
              from tally.lifetime_totals(usage_insights.user_id, 'kind') t
              join tally.kinds r on r.kind = t.value
             where r.audio and r.featured_dimension is not null and t.duration_ms > 0
             order by t.duration_ms desc, r.kind
             limit 1) as f
     cross join lateral tally.lifetime_totals(usage_insights.user_id, f.dimension) v
     where v.duration_ms > 0
     order by v.duration_ms desc, v.value
     limit 1
  ), quota as (
    select * from tally.quota_forecast(usage_insights.user_id, 7, usage_insights.at) f
     where f.status in ('reached', 'will_reach') or f.utilization_pct >= 80
  ), anomaly as (
    -- Per kind used today or yesterday, in its own unit.
    select k.value as kind, a.day, a.value, a.baseline_median
      from (select distinct t.value
              from tally.daily_totals(usage_insights.user_id, 'kind', today - 1, today) t
             where t.quantity > 0) as k
     cross join lateral tally.usage_anomalies(usage_insights.user_id, today - 1, today, 'quantity', k.value, 3.5,
                                              usage_insights.at) a
     where a.is_anomaly and a.value > a.baseline_median
     order by a.day desc, a.value / greatest(a.baseline_median, 1) desc, k.value
     limit 1
  ), top_kind as (
    select p.kind from tally.period_totals(usage_insights.user_id, usage_insights.at) p
     order by p.events desc, p.kind limit 1
  ), peer as (
    select k.kind, r.percentile
      from top_kind k
     cross join lateral tally.peer_percentile(usage_insights.user_id, k.kind, usage_insights.at) r
     where r.peers >= 10 and r.percentile is not null
  )
  select x.code, x.subject, x.message, x.value from (
    select 1 as ord, 'month_trend'::text as code, t.kind as subject,
           format('%s usage is %s %s%% this month so far (%s vs %s %s by this day last month)', t.kind,
                  case when t.delta_pct > 0 then 'up' else 'down' end, abs(t.delta_pct),
                  to_char(t.current_value, 'FM999,999,999,999,990'), to_char(t.previous_value, 'FM999,999,999,999,990'),
                  tally._kind_unit(t.kind)) as message,
           t.delta_pct as value
      from trends t
    union all
    select 2, 'streak', null,
           format('You are on a %s-day streak (your longest is %s days)', p.current_streak, p.longest_streak),
           p.current_streak::numeric
      from profile p
     where p.current_streak >= 2
    union all
    select 3, 'top_' || v.dimension, v.value,
           format('Your favourite %s is %s: %s listened', v.dimension, v.value, tally._duration_text(v.duration_ms)),
           v.duration_ms::numeric
      from voice v
    union all
    select 4, 'quota', q.kind,
           case when q.status = 'reached'
                  then format('You have used your whole %s allowance for this period (%s of %s)', q.kind,
                              to_char(q.used, 'FM999,999,999,999,990'), to_char(q.quota, 'FM999,999,999,999,990'))
                when q.status = 'will_reach'
                  then format('At your current pace you will reach your %s limit on %s (%s%% used so far)', q.kind,
                              to_char(q.reaches_limit_on, 'YYYY-MM-DD'), q.utilization_pct)
                else format('You have used %s%% of your %s allowance for this period', q.utilization_pct, q.kind) end,
           q.utilization_pct
      from quota q
    union all
    select 5, 'anomaly', a.kind,
           format('%s %s usage (%s %s) was far above your usual (median %s a day)',
                  case when a.day = today then 'Today''s' else 'Yesterday''s' end, a.kind,
                  to_char(a.value, 'FM999,999,999,999,990'), tally._kind_unit(a.kind),
                  to_char(a.baseline_median, 'FM999,999,999,999,990')),
           a.value
      from anomaly a
    union all
    select 6, 'peer', r.kind, format('You used more %s than %s%% of users this period', r.kind, r.percentile), r.percentile
      from peer r
     where r.percentile >= 50
  ) as x
   order by x.ord, x.subject;
end
$$;

comment on function tally.usage_insights(text, timestamptz) is
  'Short plain-language insights with their number: month_trend (top 3 kinds, |change| >= 5% against the same dates last month), streak (2+ days), top_voice (the favourite value of the dimension the user''s audio kinds feature: top_ and its name), quota (reached, will reach, or 80%+ used), anomaly (today''s or yesterday''s quantity of a kind far above its usual), peer (more than at least 50% of the users of the top kind, at least 10 peers; as of the last analytics refresh). Exact at commit, except the peer distribution.';
