-- Recomputes a user's subscription anchor (local day of month the running subscription started) and, when the time zone
-- or the effective anchor now differs from old_tz / old_anchor, re-buckets the user's retained history in this transaction.
-- Called by tally.set_user_settings, tally.start_subscription and tally.end_subscription after they change the user's rows.
create or replace function tally._sync_billing_anchor(user_id text, old_tz text, old_anchor integer)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  tz      text := tally._user_time_zone(_sync_billing_anchor.user_id);
  sub_day integer;
begin
  select extract(day from s.started_at at time zone tz)::integer into sub_day
    from tally.subscriptions s
   where s.user_id = _sync_billing_anchor.user_id and s.ended_at is null
   order by s.started_at desc
   limit 1;
  if sub_day is not null then
    insert into tally.user_settings as s (user_id, subscription_anchor_day)
    values (_sync_billing_anchor.user_id, sub_day)
    on conflict on constraint user_settings_pkey do update
      set subscription_anchor_day = excluded.subscription_anchor_day,
          updated_at = excluded.updated_at  -- the default now(): Citus allows no volatile call here
      where s.subscription_anchor_day is distinct from excluded.subscription_anchor_day;
  else
    update tally.user_settings s set subscription_anchor_day = null, updated_at = now()
     where s.user_id = _sync_billing_anchor.user_id and s.subscription_anchor_day is not null;
  end if;

  -- The rollups are bucketed with the old zone and anchor: rebuild this user's
  -- retained history (pending deltas stay pending and are merged with the new
  -- settings). The rebuild holds the merge lock to the end of the transaction, so
  -- no merge can fold this user's deltas with the old settings meanwhile. A user
  -- without merged usage (no lifetime row: a new user) has no rollups to re-bucket:
  -- only the merge lock is taken, so that settings for many new users can be set
  -- in one transaction (a rebuild per user would hold its temporary tables' locks
  -- to the end of the transaction).
  if tz is distinct from old_tz or tally._period_anchor(_sync_billing_anchor.user_id) is distinct from old_anchor then
    if exists (select from tally.user_totals t where t.user_id = _sync_billing_anchor.user_id) then
      perform tally.rebuild(_sync_billing_anchor.user_id);
    else
      perform tally._lock('merge');
    end if;
  end if;
end
$$;

comment on function tally._sync_billing_anchor(text, text, integer) is
  'Sets the user''s subscription anchor from the running subscription and, when the time zone or effective billing anchor changed from old_tz / old_anchor, rebuilds the user''s retained rollups in the same transaction (internal).';
