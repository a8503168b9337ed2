"""A throwaway PostgreSQL server for the demo, the tests and the benchmarks (not part of the client library).

``database()`` yields a superuser DSN: ``DATABASE_URL`` when set, else a local
cluster started from the PostgreSQL binaries on this machine (or a container).
"""

from .cluster import FAST_UNSAFE, LocalCluster, ServerError, database, find_bindir, wait_ready

__all__ = ["FAST_UNSAFE", "LocalCluster", "ServerError", "database", "find_bindir", "wait_ready"]
