"""`python -m pgtally ...` runs the `pgtally` command line."""

from pgtally.cli import main

main()
