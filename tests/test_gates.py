"""The code gates, run by the test suite so that `./scripts/test` (and CI) fails when one fails.

Each gate is the same command a developer runs (see docs/development.md), taken
from the virtualenv that runs the tests; the configuration is in pyproject.toml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: What ruff checks and formats: every Python tree of the repository.
PYTHON_TREES = ("python_client", "tests", "examples", "benchmarks", "scripts", "migrations")


def run_gate(*command: str) -> None:
    """Run one gate from the repository root; fail with its output when it fails."""
    tool = BIN / command[0]
    if not tool.exists():
        pytest.fail(f"{command[0]} is not installed next to {sys.executable}: pip install -e '.[test]'")
    done = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}", pytrace=False)


def test_ruff_check() -> None:
    run_gate("ruff", "check", *PYTHON_TREES)


def test_ruff_format() -> None:
    run_gate("ruff", "format", "--check", *PYTHON_TREES)


def test_mypy_strict_on_the_package_and_the_typing_tests() -> None:
    run_gate("mypy")


def test_import_contracts() -> None:
    run_gate("lint-imports")


def test_every_module_of_the_package_is_under_an_import_contract() -> None:
    """A new module or subpackage must be placed in a contract, else lint-imports would not guard it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    covered: set[str] = set()
    for contract in config["contracts"]:
        for key in ("layers", "source_modules"):
            for entry in contract.get(key, []):
                covered.update(name.strip() for name in entry.replace(":", "|").split("|"))
    package = ROOT / "python_client" / "pgtally"
    found = {f"pgtally.{p.stem}" for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    found |= {f"pgtally.{p.parent.name}" for p in package.glob("*/__init__.py")}
    assert found - covered == set(), "place these in a contract of [tool.importlinter] in pyproject.toml"
