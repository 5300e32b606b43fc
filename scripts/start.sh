#!/usr/bin/env bash
# Starts dlc-platform on its embedded default: sets up whatever is missing (environment,
# tiny trained DLC model, demo registry and synthetic sessions), then runs the Dagster
# webserver + daemon (`dagster dev`) on http://127.0.0.1:3000. The session sensor picks
# the demo sessions up and processes them without any click.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # see dlc_assets/__init__.py

export DAGSTER_HOME=${DAGSTER_HOME:-$PWD/.dagster_home}
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
export DLC_PLATFORM_SETTLE_SECONDS=${DLC_PLATFORM_SETTLE_SECONDS:-5}

.venv/bin/python -m dlc_assets.demo "$@"
echo "[start] Dagster UI on http://${DLC_PLATFORM_HOST:-127.0.0.1}:${DLC_PLATFORM_PORT:-3000}"
exec .venv/bin/dagster dev -w workspace.yaml -h "${DLC_PLATFORM_HOST:-127.0.0.1}" \
  -p "${DLC_PLATFORM_PORT:-3000}"
