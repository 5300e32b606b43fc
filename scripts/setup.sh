#!/usr/bin/env bash
# Idempotent set-up: creates .venv at the project root from the lock file and installs
# the project in editable mode. Re-runs only when requirements.lock or pyproject.toml change.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
stamp=.venv/.dlc-platform-installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

start=$(date +%s)
echo "[setup] creating the Python environment in .venv (first run takes a few minutes)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check uv
# uv resolves nothing here: it installs exactly the pinned versions of requirements.lock.
.venv/bin/uv pip sync --python .venv/bin/python requirements.lock
.venv/bin/uv pip install --python .venv/bin/python --no-deps -e .
echo "$want" > "$stamp"
echo "[setup] environment ready in $(( $(date +%s) - start )) s"
