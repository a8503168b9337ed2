-- Anonymized distribution of other users' billing-period usage of a kind: how many peers, how many used less than a quantity.
-- Called by tally.peer_percentile only; SECURITY DEFINER because readers see only their own rows (RLS), and it returns counts only.
create or replace function tally._peer_rank(kind text, month date, quantity bigint, exclude_user_id text)
returns table (peers bigint, below bigint)
language sql
stable
security definer
set search_path = ''
as $$
  -- Peers: users with merged usage of the kind in a billing period starting in
  -- the same calendar month. No user id leaves this function.
  select count(*), count(*) filter (where t.quantity < _peer_rank.quantity)
    from tally.user_periods t
   where t.kind = _peer_rank.kind
     and t.period_start >= date_trunc('month', _peer_rank.month::timestamp)::date
     and t.period_start < (date_trunc('month', _peer_rank.month::timestamp) + interval '1 month')::date
     and t.user_id <> exclude_user_id
     and t.quantity > 0
$$;

comment on function tally._peer_rank(text, date, bigint, text) is
  'Counts of other users with usage of a kind in a billing period starting in the month of month, and of those who used less than quantity; anonymized (counts only), security definer so it sees past row-level security (internal).';
