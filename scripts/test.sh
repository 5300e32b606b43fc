#!/usr/bin/env bash
# Sets up whatever is missing (Python environment, PostgreSQL and Chromium packages),
# then runs the whole test suite, slow end-to-end tests included. Extra arguments go to
# pytest (e.g. `./scripts/test.sh -m "not slow"` for a quick pass, `./scripts/test.sh
# tests/test_sessions.py -n 0` for one file in this process). Test files run in parallel
# (pytest-xdist, one worker per core, at most 4; a file's tests stay on one worker so that
# module fixtures are built once): DLC_TEST_WORKERS overrides the count.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # see dlc_assets/__init__.py
./scripts/services.sh
workers=${DLC_TEST_WORKERS:-$(.venv/bin/python -c "import os; print(min(4, len(os.sched_getaffinity(0))))")}
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
