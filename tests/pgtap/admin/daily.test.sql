-- The platform's daily totals (tally.admin_daily) are kept by the refresh day by day: it re-aggregates only the UTC
-- days whose per-user rows changed (a late event, a reversal, an erasure, a rebuild), the days with pending deltas,
-- and every day after a change of a kind's unit; after each refresh the table equals a full re-aggregation, and the
-- days nobody touched are not rewritten. Only the owner reads the table, the marks and the helpers.
begin;
select plan(46);

select is(tally.set_min_group_size(1), 5, 'the minimum group size is 5 by default; 1 shows every group');

-- The table equals a full re-aggregation of the per-user rows and the pending deltas.
create function tests.daily_is_exact() returns boolean language sql as $$
  select not exists (select * from tally.admin_daily except select * from tally._admin_daily_rows(null))
     and not exists (select * from tally._admin_daily_rows(null) except select * from tally.admin_daily)
$$;
create function tests.marked() returns text language sql as $$
  select coalesce(string_agg(distinct s.day::text, ' ' order by s.day::text), '') from tally.admin_daily_stale s
$$;
-- The physical places of a day's rows: unchanged when the refresh did not rewrite them.
create function tests.places(d date) returns text language sql as $$
  select string_agg(a.ctid::text, ' ' order by a.ctid) from tally.admin_daily a where a.day = d
$$;
create function tests.tts_day(d date, p text default '*') returns text language sql as $$
  select format('e%s u%s q%s %s', a.events, a.users, a.quantity, a.unit)
    from tally.admin_daily a where a.dimension = 'kind' and a.plan = p and a.day = d and a.value = 'tts'
$$;

select is(tests.marked(), '-infinity', 'a new install marks every day: the first refresh aggregates them all');

-- Three days of usage, two users, two kinds.
select ok(tests.tts('a1', 'u1', '2026-10-01 10:00+00', 100)
      and tests.tts('a2', 'u2', '2026-10-01 11:00+00', 200)
      and tests.tts('a3', 'u1', '2026-10-02 10:00+00', 300)
      and tally.record_usage('a4', 'u2', 'export', 1, '2026-10-02 12:00+00', attributes => '{"voice": "af_alloy"}')
      and tests.tts('a5', 'u2', '2026-10-03 10:00+00', 400), 'five events on three days');
select is(tally.merge_pending(), 5, 'merged');
select is(tests.marked(), '-infinity 2026-10-01 2026-10-02 2026-10-03', 'the merge marked its days');
select is((select count(*)::int from tally.refresh_analytics() r where r.status = 'refreshed'), 10, 'refreshed');
select ok(tests.daily_is_exact(), 'the table equals a full re-aggregation');
select is(tests.marked(), '', 'the refresh took every mark into account');
select is(tests.tts_day('2026-10-01'), 'e2 u2 q300 characters', 'Oct 1: two TTS users');

create temporary table places as
  select d::date as day, tests.places(d::date) as places from generate_series('2026-10-01'::date, '2026-10-03', '1 day') d;

-- A late event on Oct 2 (recorded now, about a day weeks ago), merged.
select ok(tests.tts('b1', 'u3', '2026-10-02 18:00+00', 50), 'a late event on Oct 2');
select is(tally.merge_pending(), 1, 'merged');
select is(tests.marked(), '2026-10-02', 'only Oct 2 is marked');
select is((select count(*)::int from tally.refresh_analytics() r where r.status = 'refreshed'), 10, 'refreshed');
select ok(tests.daily_is_exact(), 'exact after the late event');
select is(tests.tts_day('2026-10-02'), 'e2 u2 q350 characters', 'Oct 2 counts the late user');
select is((select string_agg(p.day::text, ' ' order by p.day) from places p where p.places = tests.places(p.day)),
          '2026-10-01 2026-10-03', 'the days nobody touched were not rewritten');

-- Pending (not merged) usage counts at once, and its day is re-aggregated again at the next refresh.
select ok(tests.tts('c1', 'u3', '2026-10-03 09:00+00', 10), 'an event on Oct 3, not merged');
select is((select count(*)::int from tally.refresh_analytics() r where r.status = 'refreshed'), 10, 'refreshed');
select is(tests.tts_day('2026-10-03'), 'e2 u2 q410 characters', 'the pending event counts');
select is(tests.marked(), '', 'a pending day needs no mark: it is re-aggregated while pending');
select is(tally.merge_pending(), 1, 'merged');
select is(tests.marked(), '2026-10-03', 'the merge that takes it into the rollup marks it');
select is((select count(*)::int from tally.refresh_analytics() r where r.status = 'refreshed'), 10, 'refreshed');
select ok(tests.daily_is_exact() and tests.marked() = '', 'exact, and nothing left marked once merged');

-- A reversal, an erasure and a rebuild change per-user rows: each marks its days, the next refresh is exact.
select ok(tally.reverse_usage('u1', 'a1', 'r1'), 'the Oct 1 event of u1 reversed');
select lives_ok($$select tally.forget_user('u2')$$, 'u2 erased');
select lives_ok($$select tally.rebuild('u3')$$, 'u3 rebuilt');
select is(tally.merge_pending(), 1, 'the reversal merged');
select is((select count(*)::int from tally.refresh_analytics() r where r.status = 'refreshed'), 10, 'refreshed');
select ok(tests.daily_is_exact(), 'exact after a reversal, an erasure and a rebuild');

-- A kind declared again as it is, or with another display name, changes no figure: nothing is marked.
select lives_ok($$select tally.declare_kind('export', 'files', 'Exports')$$, 'exports declared again, unchanged');
select lives_ok($$select tally.declare_kind('export', 'files', 'File exports')$$, 'exports renamed');
select is(tests.marked(), '', 'neither marks a day');
-- A kind's new unit changes which quantities add up on every day: every day is marked.
select lives_ok($$select tally.declare_kind('export', 'characters')$$, 'exports now count characters');
select ok(tests.marked() like '%-infinity%' and (select count(*)::int from tally.refresh_analytics()) = 10
          and tests.daily_is_exact() and tests.marked() = '',
          'a change of the kinds marks every day; the next refresh re-aggregates them all');

-- A kind renamed (the owner, directly) changes units too; a dimension redeclared changes which deltas have a value.
select lives_ok($$update tally.kinds set kind = 'file.export' where kind = 'export'$$, 'a kind renamed');
select ok(tests.marked() like '%-infinity%', 'a renamed kind marks every day');
select ok((select count(*)::int from tally.refresh_analytics()) = 10 and tests.daily_is_exact() and tests.marked() = '',
          'refreshed: exact');
select lives_ok($$select tally.declare_dimension('voice', '{voice}')$$, 'the voice dimension declared again');
select ok(tests.marked() like '%-infinity%', 'a change of the dimensions marks every day');

-- Only the owner (and the definer functions) reads the table and the marks, or re-aggregates.
set local role tally_analyst;
select throws_ok($$select * from tally.admin_daily$$, '42501', null, 'an analyst reads the trends, not the table');
select throws_ok($$select * from tally._admin_daily_rows(null)$$, '42501', null, 'nor the re-aggregation');
select throws_ok($$select tally._refresh_admin_daily()$$, '42501', null, 'nor runs the day-by-day refresh');
select ok((select count(*) from tally.admin_trend('kind', null, '2026-10-01', '2026-10-03')) > 0,
          'an analyst reads the daily totals through tally.admin_trend');
reset role;
set local role tally_reader;
select throws_ok($$delete from tally.admin_daily_stale$$, '42501', null, 'a reader cannot unmark days');
select throws_ok($$select tally._refresh_admin_daily()$$, '42501', null, 'nor run the day-by-day refresh');
reset role;

select * from finish();
rollback;
