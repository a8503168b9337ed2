-- A text cell made safe for spreadsheets: a value starting with =, +, -, @, tab or carriage return gets a leading single quote.
-- Called by the Python client's CSV exports (export_events_csv, export_rollups_csv, `pgtally export`) on every text column.
--
-- Not pinned to a search_path on purpose: a pinned SQL function is never inlined,
-- and this one runs once per exported cell (pinned, an export of a million events
-- took four times as long). It names only its argument and pg_catalog functions
-- and operators (spelled OPERATOR(pg_catalog.x)), so no caller's search_path can
-- change what it does.
create or replace function tally._csv_safe(cell text)
returns text
language sql
immutable
parallel safe
as $$
  select case
    when pg_catalog.left(cell, 1) OPERATOR(pg_catalog.=) any (array['=', '+', '-', '@', E'\t', E'\r'])
      then '''' OPERATOR(pg_catalog.||) cell
    else cell
  end
$$;

comment on function tally._csv_safe(text) is
  'A CSV cell a spreadsheet will not run as a formula: text starting with =, +, -, @, tab or carriage return gets a leading single quote; NULL stays NULL (the stored data are unchanged). Apply it to text columns only, in the select list of COPY ... TO STDOUT (FORMAT csv).';
