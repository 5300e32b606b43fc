#!/usr/bin/env bash
# Sets up whatever is missing, then runs the whole test suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
