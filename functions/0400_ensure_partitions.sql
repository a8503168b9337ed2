-- Creates the monthly partitions of tally.usage_events from one month to another, moving any
-- rows the default partition holds for them. Called at install, by `pgtally partitions` and on a schedule.
create or replace function tally.ensure_partitions(
  from_month date default (date_trunc('month', now()) - interval '1 month')::date,
  to_month   date default (date_trunc('month', now()) + interval '3 months')::date
)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- A session holding any lock on the log (even a reader's open transaction) must not make writers queue
-- behind the partition DDL for long: give up after 2 s (55P03); the next scheduled run creates the month.
set lock_timeout = '2s'
as $$
declare
  month_start date;
  month_end   date;
  lo          timestamptz;
  hi          timestamptz;
  part        text;
  created     integer := 0;
  issued      text;
  distributed boolean;
begin
  if from_month is null or to_month is null or to_month < from_month
     or to_month > from_month + interval '100 years' then
    raise exception using errcode = 'PT011', message = 'ensure_partitions: need from_month <= to_month, at most 100 years apart';
  end if;
  month_start := date_trunc('month', from_month)::date;
  while month_start <= to_month loop
    part := format('usage_events_%s', to_char(month_start, 'YYYY_MM'));
    if to_regclass(format('tally.%I', part)) is null then
      -- Serialize creators; the lock on the default partition makes the move atomic for writers.
      perform tally._lock('partitions');
      if to_regclass(format('tally.%I', part)) is null then
        month_end := (month_start + interval '1 month')::date;
        -- Months are UTC months whatever the session's time zone, so boundaries
        -- made by different sessions always meet.
        lo := month_start::timestamp at time zone 'UTC';
        hi := month_end::timestamp at time zone 'UTC';
        perform 1 from tally.usage_events_default where occurred_at >= lo and occurred_at < hi limit 1;
        if not found then
          execute format('create table tally.%I partition of tally.usage_events for values from (%L) to (%L)',
                         part, lo, hi);
        else
          distributed := tally._is_distributed();
          -- Rows of this month sit in the default partition: detach it (writers wait on the
          -- parent's lock, none fails), create the month, move the rows, re-attach.
          -- A detached table has no triggers, so the move is not a change of the log.
          alter table tally.usage_events detach partition tally.usage_events_default;
          execute format('create table tally.%I partition of tally.usage_events for values from (%L) to (%L)',
                         part, lo, hi);
          -- The rows are recorded already: a one-time batch token (see tally.record_usage_batch)
          -- lets them skip the row trigger, which would take them for duplicates.
          issued := gen_random_uuid()::text;
          if distributed then
            -- On Citus the row trigger fires on the workers, which set_config does not reach;
            -- SET LOCAL does (citus.propagate_set_commands = local, set by pgtally distribute),
            -- but only inside a transaction block or a DO block: hence the DO. The statement
            -- trigger that consumes tokens is dropped there: none is issued.
            execute format('do %L', format('begin set local tally.batch_token = %L; end', issued));
          else
            insert into tally.batch_tokens (token) values (issued);
            perform set_config('tally.batch_token', issued, true);
          end if;
          insert into tally.usage_events
          select * from tally.usage_events_default where occurred_at >= lo and occurred_at < hi;
          if distributed then
            execute 'do $reset$ begin set local tally.batch_token = ''''; end $reset$';
          else
            perform set_config('tally.batch_token', '', true);
          end if;
          -- Detached and locked: the refusal trigger (its own, not the parent's) can step aside
          -- (on Citus it does not exist: distribute drops the statement triggers).
          if not distributed then
            alter table tally.usage_events_default disable trigger usage_events_before_change_refuse_statement;
          end if;
          delete from tally.usage_events_default where occurred_at >= lo and occurred_at < hi;
          if not distributed then
            alter table tally.usage_events_default enable trigger usage_events_before_change_refuse_statement;
          end if;
          alter table tally.usage_events attach partition tally.usage_events_default default;
        end if;
        perform tally._protect_partition(format('tally.%I', part)::regclass);
        execute format('comment on table tally.%I is %L', part,
                       format('Usage log partition for %s (created by tally.ensure_partitions).', to_char(month_start, 'YYYY-MM')));
        created := created + 1;
      end if;
    end if;
    month_start := (month_start + interval '1 month')::date;
  end loop;
  return created;
end
$$;

comment on function tally.ensure_partitions(date, date) is
  'Creates monthly partitions of the usage log covering from_month..to_month (default: last month to three months ahead), moving matching rows out of the default partition. Returns how many it created.';
