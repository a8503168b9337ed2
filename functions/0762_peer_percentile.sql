-- Anonymized peer percentile of one user's usage of a kind in the current billing period.
-- Called by insights and the Python client's peer_percentile(); exposes counts only, never another user's id.
create or replace function tally.peer_percentile(user_id text, kind text default 'tts', at timestamptz default now())
returns table (
  period_start date,
  quantity     bigint,
  peers        bigint,
  percentile   numeric
)
language plpgsql
stable
set search_path = ''
as $$
declare
  p_start date;
  mine    bigint;
begin
  if kind is null or kind = '' then
    raise exception using errcode = 'PT011', column = 'kind', message = 'kind is required';
  end if;
  -- The user's own usage is exact (rollups + pending, read with the caller's rights).
  select min(t.period_start), coalesce(sum(t.quantity) filter (where t.kind = peer_percentile.kind), 0)
    into p_start, mine
    from tally.period_totals(peer_percentile.user_id, peer_percentile.at) t;
  if p_start is null then
    p_start := tally._period_start((at at time zone tally._user_time_zone(peer_percentile.user_id))::date,
                                   coalesce((select s.billing_anchor_day from tally.user_settings s
                                              where s.user_id = peer_percentile.user_id), 1));
  end if;
  return query
  select p_start, mine, r.peers,
         case when r.peers > 0 then round(100.0 * r.below / r.peers, 1) end
    from tally._peer_rank(peer_percentile.kind, p_start, mine, peer_percentile.user_id) r;
end
$$;

comment on function tally.peer_percentile(text, text, timestamptz) is
  'Share (%) of peers, the other users with usage of the kind in a billing period starting in the same month (merged counters), who used less of it than the user this period; NULL without peers. Anonymized: returns counts only.';
