-- A reader learns only its own position among its peers: no function a reader may execute takes a quantity or a
-- user to leave out; asking for another user, existing or not, answers the same (nothing); the published
-- distribution holds no user id, never the smallest or largest usage, nothing for small groups, and no cut point
-- that is one user's exact usage.
begin;
select plan(21);

create function tests.use(k text, u text, q bigint)
returns boolean language sql as $$ select tally.record_usage(k || '-' || u, u, k, q, '2026-11-20 10:00+00') $$;
create function tests.answer(u text, k text default 'llm')
returns text language sql as $$
  select coalesce(string_agg(format('%s q=%s peers=%s pct=%s', p.period_start, p.quantity, p.peers,
                                    coalesce(p.percentile::text, '-')), ' | '), 'nothing')
    from tally.peer_percentile(u, k, '2026-11-21 12:00+00') p
$$;
grant usage on schema tests to tally_reader;

-- 1. The catalog: what a reader may execute.
select is((select string_agg(p.oid::regprocedure::text, ' ')
             from pg_proc p
            where p.pronamespace = 'tally'::regnamespace and p.proname ~ 'peer'
              and has_function_privilege('tally_reader', p.oid, 'execute')),
          'tally.peer_percentile(text,text,timestamp with time zone)',
          'the one peer function a reader may execute is peer_percentile(user_id, kind, at)');
select is((select count(*)::int
             from pg_proc p
            where p.pronamespace = 'tally'::regnamespace and p.proname ~ 'peer'
              and has_function_privilege('tally_reader', p.oid, 'execute')
              and (p.prosecdef
                   or exists (select from unnest(p.proargtypes::oid[]) t
                               where t in ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                                           'numeric'::regtype, 'real'::regtype, 'double precision'::regtype))
                   or exists (select from unnest((p.proargnames)[1:p.pronargs]) a where a ~ 'quantity|exclude|below'))),
          0, 'no peer function a reader may execute takes a quantity or a user to leave out, or runs as its owner');
select is(to_regprocedure('tally._peer_rank(text, date, bigint, text)'), null, 'the old counting helper is gone');
select is((select count(*)::int from pg_attribute a
            where a.attrelid = 'tally.peer_distribution_mv'::regclass and a.attnum > 0 and a.attname ~ 'user'),
          0, 'the published distribution has no user column');

-- 2. Usage in November: llm by u01..u12 (10, 20, .., 120), big by 100 users (1 .. 100), ocr by 4 users,
-- stt by 6 users (the six quantities are known), vid by 9.
select ok((select bool_and(tests.use('llm', 'u' || lpad(i::text, 2, '0'), 10 * i)) from generate_series(1, 12) i)
      and (select bool_and(tests.use('big', 'g' || lpad(i::text, 3, '0'), i)) from generate_series(1, 100) i)
      and (select bool_and(tests.use('ocr', 'u' || lpad(i::text, 2, '0'), i)) from generate_series(1, 4) i)
      and (select bool_and(tests.use('stt', 'u' || lpad(i::text, 2, '0'), i * i)) from generate_series(1, 6) i)
      and (select bool_and(tests.use('vid', 'u' || lpad(i::text, 2, '0'), i)) from generate_series(1, 9) i),
          'November: llm 12 users, big 100, ocr 4, stt 6, vid 9');
select ok(tally.merge_pending() > 0 and (select count(*) = 10 from tally.refresh_analytics()), 'merged and refreshed');

-- 3. The reader u01 (10 of llm).
set local role tally_reader;
set local tally.user_id = 'u01';
select is(tests.answer('u01'), '2026-11-01 q=10 peers=12 pct=0', 'a reader sees its own position');
select is(tests.answer('u12'), 'nothing', 'another user''s position: nothing');
select is(tests.answer('nobody'), tests.answer('u12'), 'a user that does not exist: the very same answer');
select is(tests.answer('u12', 'big') || ' ' || tests.answer('nobody', 'big') || ' ' || tests.answer('u01', 'big'),
          'nothing nothing nothing', 'whatever the kind (and without usage of it, the caller gets nothing too)');
select is((select count(*)::int from tally.usage_insights('u12', '2026-11-21 12:00+00')),
          (select count(*)::int from tally.usage_insights('nobody', '2026-11-21 12:00+00')),
          'insights tell an existing user from an unknown one no better');
select throws_ok($$select * from tally.peer_percentile('u12', '')$$, 'PT011', 'kind is required',
                 'a bad kind is refused alike for anyone');

-- 4. What the reader can see of everyone else: the distribution itself.
select is((select string_agg(format('%s@%s=%s', d.kind, d.percentile, d.cut_point), ' ' order by d.kind, d.percentile)
             from tally.peer_distribution_mv d where d.kind in ('llm', 'ocr', 'stt', 'vid')),
          'llm@50=65', 'llm (12 users) publishes only its median, between the 6th and 7th user; 4, 6 and 9 users publish nothing');
select is((select format('%s cut points, %s..%s by %s, peers %s', count(*), min(d.percentile), max(d.percentile),
                         (max(d.percentile) - min(d.percentile)) / (count(*) - 1), max(d.peers))
             from tally.peer_distribution_mv d where d.kind = 'big'),
          '19 cut points, 5..95 by 5, peers 100', '100 users: every 5 %, at least 5 users between two cut points');
reset role;
-- Checked as the owner, who sees every user's usage.
create function tests.cuts_safe(k integer)
returns text language sql as $$
  with q as (
    select p.kind, p.user_id, sum(p.quantity) as quantity from tally.user_periods p
     where p.period_start = '2026-11-01' group by 1, 2
  )
  select coalesce(string_agg(format('%s@%s', d.kind, d.percentile), ' '), 'safe')
    from tally.peer_distribution_mv d
   where d.month = '2026-11-01'
     and ((select count(*) from q where q.kind = d.kind and q.quantity < d.cut_point) < k
          or (select count(*) from q where q.kind = d.kind and q.quantity > d.cut_point) < k
          or exists (select from q where q.kind = d.kind and q.quantity = d.cut_point)
          or d.cut_point >= (select max(q.quantity) from q where q.kind = d.kind))
$$;
select is(tests.cuts_safe(5), 'safe',
          'every cut point has at least 5 users below and above it, is nobody''s exact usage and is below the maximum');
select is((select count(*)::int from tally.peer_distribution_mv d
            where d.cut_point in (select sum(p.quantity) from tally.user_periods p where p.kind = d.kind
                                   group by p.user_id, p.period_start)),
          0, 'so a reader cannot read any other user''s exact usage off it');

-- 5. The reader u07 (70 of llm) is above the median; pending usage counts at once for the reader's own figure.
set local role tally_reader;
set local tally.user_id = 'u07';
select is(tests.answer('u07'), '2026-11-01 q=70 peers=12 pct=50', 'u07 used more than at least half of the llm users');
reset role;

-- 6. Even with the explicit opt-out (minimum group size 1) the extremes are never published.
select is(tally.set_min_group_size(1), 5, 'the owner opts out');
select ok((select count(*) = 10 from tally.refresh_analytics()), 'the distribution follows at the next refresh');
select is((select string_agg(format('%s@%s=%s', d.kind, d.percentile, d.cut_point), ' ' order by d.percentile)
             from tally.peer_distribution_mv d where d.kind = 'stt'),
          'stt@20=6.5 stt@40=12.5 stt@60=20.5 stt@80=30.5',
          'stt (1, 4, 9, 16, 25, 36) now publishes midpoints, none of them a user''s usage');
select is(tests.cuts_safe(1), 'safe', 'every cut point still has a user below and above it and is below the maximum');

select * from finish();
rollback;
