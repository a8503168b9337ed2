-- Row trigger on tally.report_subscriptions: an erasure (tally.forget_user) deletes the subscription, e-mail address included.
-- Fired by the pseudonymizing UPDATE of tally.forget_user only (the trigger's WHEN clause checks tally.erasing).
create or replace function tally._trg_report_subscriptions_after_update_erase()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  -- forget_user replaces user_id by a pseudonym in every table; an address kept
  -- under the pseudonym would still name the person, so the row goes instead.
  delete from tally.report_subscriptions s where s.user_id = new.user_id;
  return null;
end
$$;

comment on function tally._trg_report_subscriptions_after_update_erase() is
  'After tally.forget_user pseudonymizes a report subscription, deletes it: the e-mail address is personal data and no summary is sent to a forgotten user (internal).';
