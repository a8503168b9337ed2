-- Where one user's usage of a kind this billing period stands among all users of the kind (anonymized cut points).
-- Called by insights and the Python client's peer_percentile(); SECURITY INVOKER: a reader learns only its own position.
create or replace function tally.peer_percentile(user_id text, kind text default 'tts', at timestamptz default now())
returns table (
  period_start date,
  quantity     numeric,
  peers        bigint,
  percentile   numeric,
  refreshed_at timestamptz
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if kind is null or kind = '' then
    raise exception using errcode = 'PT011', column = 'kind', message = 'kind is required';
  end if;
  -- The user's own usage is exact (rollups + pending) and read with the caller's
  -- rights: row-level security shows a reader only its own rows, so for any other
  -- user id, existing or not, this answers no row. Nobody else's usage is read
  -- here: the others are only the published cut points of the distribution
  -- (tally.peer_distribution_mv, as of its last refresh), which hold no user id,
  -- never the smallest or largest usage, and nothing for small groups.
  return query
  with mine as (
    select t.period_start, t.quantity
      from tally.period_totals(peer_percentile.user_id, peer_percentile.at) t
     where t.kind = peer_percentile.kind and t.quantity > 0
  )
  select m.period_start, m.quantity, d.peers,
         case when d.peers is not null
              then coalesce(d.above, 0)::numeric end,
         d.refreshed_at
    from mine m
    left join lateral (
      -- At most 99 rows by the unique index: the read does not grow with users.
      select max(c.peers) as peers, max(c.percentile) filter (where c.cut_point < m.quantity) as above,
             max(c.refreshed_at) as refreshed_at
        from tally.peer_distribution_mv c
       where c.kind = peer_percentile.kind
         and c.month = date_trunc('month', m.period_start::timestamp)::date
    ) d on true;
end
$$;

comment on function tally.peer_percentile(text, text, timestamptz) is
  'The user''s usage of a kind in the current billing period (exact) and a lower bound of the share (%) of users of the kind whose periods start in the same month who used less (the highest published cut point of tally.peer_distribution_mv below it; 0 below the lowest), with the number of those users and when the distribution was refreshed; peers and percentile NULL when the month has no published distribution. No row without usage of the kind this period, and no row for a user the caller cannot see (a reader sees only itself).';
