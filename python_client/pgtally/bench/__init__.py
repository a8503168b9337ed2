"""The benchmarks behind ``pgtally bench``: ingest (:mod:`pgtally.bench.ingest`) and reads at scale (:mod:`pgtally.bench.reads`).

Each starts its own throwaway server (see :mod:`pgtally.server`) unless given a DSN. Needs ``pgtally[demo]``.
"""
