"""The demo (``pgtally demo``), its realistic workload generator and the HTML report.

Modules: :mod:`pgtally.demo.run` (load, print, report), :mod:`pgtally.demo.workload`
(deterministic events, also used by the tests and benchmarks) and
:mod:`pgtally.demo.report` (self-contained HTML page). Needs ``pgtally[demo]``.
"""
