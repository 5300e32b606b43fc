#!/usr/bin/env bash
# Sets up whatever is missing (Python environment, PostgreSQL and Chromium packages),
# then runs the whole test suite, slow end-to-end tests included. Extra arguments go to
# pytest (e.g. `./scripts/test.sh -m "not slow"` for a quick pass).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # see dlc_assets/__init__.py
./scripts/services.sh
exec .venv/bin/python -m pytest "$@"
