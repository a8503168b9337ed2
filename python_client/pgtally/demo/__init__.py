"""The demo (``pgtally demo``) and its realistic workload generator.

Modules: :mod:`pgtally.demo.run` (load, print, report) and :mod:`pgtally.demo.workload`
(deterministic events, also used by the tests and benchmarks); the HTML report it
writes is :mod:`pgtally.reports.html`. Needs ``pgtally[demo]``.
"""
