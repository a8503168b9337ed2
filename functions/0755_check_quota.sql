-- Hard quota check before metered work, inside the caller's transaction: locks (user, kind), reads the exact period usage, raises PT012 when it would exceed the limit.
-- Called by services before they do and record metered work in the same transaction (Python client: check_quota()).
create or replace function tally.check_quota(user_id text, kind text, amount bigint default 1, at timestamptz default now())
returns numeric
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  plan_now text;
  lim      bigint;
  tz       text;
  anchor   integer;
  p_start  date;
  used     numeric;
begin
  -- A standby's usage lags behind the primary's and it cannot take the lock: refuse rather than answer stale.
  if pg_catalog.pg_is_in_recovery() then
    raise exception using errcode = 'PT013',
      message = 'tally.check_quota runs on the primary only: this server is a read-only hot standby',
      hint = 'Send quota checks, with the writes they guard, to the primary; reads may go to standbys.';
  end if;
  if user_id is null or user_id = '' then
    raise exception using errcode = 'PT011', column = 'user_id', message = 'user_id is required';
  elsif kind is null or kind = '' then
    raise exception using errcode = 'PT011', column = 'kind', message = 'kind is required';
  elsif amount is null or amount < 0 or amount > 1000000000000000 then
    raise exception using errcode = 'PT011', column = 'amount',
      message = format('amount must be an integer between 0 and 1e15 (got %s)', coalesce(amount::text, 'null'));
  elsif at is null then
    raise exception using errcode = 'PT011', column = 'at', message = 'at is required';
  elsif current_setting('transaction_isolation') = 'repeatable read' then
    -- The usage read below must see what the previous holder of the lock committed;
    -- a repeatable-read snapshot predates the lock. (Serializable is safe: SSI aborts one of two racers.)
    raise exception using errcode = 'PT011', column = 'transaction_isolation',
      message = 'tally.check_quota needs READ COMMITTED or SERIALIZABLE isolation, not REPEATABLE READ';
  end if;

  plan_now := tally.plan_at(check_quota.user_id, check_quota.at);
  select l.monthly_limit into lim from tally.plan_limits l where l.plan = plan_now and l.kind = check_quota.kind;
  if lim is null then
    return null;  -- no limit on this kind: nothing to serialize
  end if;

  -- Callers for the same user and kind queue here until the previous one commits
  -- or rolls back (the lock is held to the end of the transaction, so its usage
  -- record is visible before the next caller reads). This function is VOLATILE,
  -- so the next statement takes a fresh snapshot (READ COMMITTED) after the lock.
  perform tally._lock_user(check_quota.user_id, 'quota:' || check_quota.kind);

  tz := tally._user_time_zone(check_quota.user_id);
  anchor := tally._period_anchor(check_quota.user_id);
  p_start := tally._period_start((check_quota.at at time zone tz)::date, anchor);

  select coalesce(sum(x.quantity), 0) into used
    from (
      select t.quantity
        from tally.user_periods t
       where t.user_id = check_quota.user_id and t.period_start = p_start and t.kind = check_quota.kind
      union all
      select q.quantity
        from tally.pending_deltas q
       where q.user_id = check_quota.user_id and q.billable and q.kind = check_quota.kind
         and tally._period_start((q.occurred_at at time zone tz)::date, anchor) = p_start
    ) as x;

  if used + amount > lim then
    raise exception using errcode = 'PT012', column = 'amount',
      message = format('quota exceeded: %s of %s used in the period starting %s, %s more would exceed the %s limit of plan %s',
                       used, check_quota.kind, p_start, amount, lim, plan_now),
      detail = format('user_id=%s kind=%s used=%s amount=%s limit=%s plan=%s period_start=%s',
                      check_quota.user_id, check_quota.kind, used, amount, lim, plan_now, p_start),
      hint = 'Upgrade the plan (tally.recommended_plan) or wait for the next billing period.';
  end if;
  return lim - used - amount;
end
$$;

comment on function tally.check_quota(text, text, bigint, timestamptz) is
  'Hard quota check: serializes callers per (user, kind) with a row lock only the owner can take, reads the exact billing-period usage and raises PT012 when usage + amount would exceed the limit of the plan in force (PT013 on a hot standby, whose usage lags); returns the quota left after amount (NULL when the kind is unlimited). Call it in the transaction that records the usage: concurrent callers can then never together exceed the limit.';
