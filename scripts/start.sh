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

.venv/bin/python -m dlc_assets.cli.demo "$@"
# QC pictures: the Dagster UI inlines only short Markdown, so the PNGs are written to a
# folder served on loopback and linked (dlc_assets/assets/qc_plots.py); unset both variables to
# embed them instead (one click on "Show Markdown").
export DLC_PLATFORM_QC_DIR="${DLC_PLATFORM_QC_DIR:-$PWD/demo/warehouse/qc}"
export DLC_PLATFORM_QC_URL="${DLC_PLATFORM_QC_URL:-http://127.0.0.1:${DLC_PLATFORM_QC_PORT:-3001}}"
mkdir -p "$DLC_PLATFORM_QC_DIR"
.venv/bin/python -m http.server "${DLC_PLATFORM_QC_PORT:-3001}" --bind 127.0.0.1 \
  --directory "$DLC_PLATFORM_QC_DIR" >/dev/null 2>&1 &
qc_server=$!
trap 'kill "$qc_server" 2>/dev/null || true' EXIT
echo "[start] Dagster UI on http://${DLC_PLATFORM_HOST:-127.0.0.1}:${DLC_PLATFORM_PORT:-3000}"

# `dagster dev` runs as a child in its own process group, and this script stays in front
# of it: SIGTERM or SIGINT (systemd, Ctrl-C, kill) stop it and everything it started
# within 30 s. Why not `exec`: a script started in the background inherits SIGINT
# ignored, Python then installs no Ctrl-C handler, and `dagster dev` ignored SIGTERM and
# SIGINT for over 30 s. The child gets SIGINT back to its default (Python's handler) and
# is asked to stop with SIGINT (its graceful shutdown: webserver, daemon, code server);
# after STOP_GRACE_S (default 20 s) the whole group is killed.
setsid .venv/bin/python -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' .venv/bin/dagster dev -w workspace.yaml \
  -h "${DLC_PLATFORM_HOST:-127.0.0.1}" -p "${DLC_PLATFORM_PORT:-3000}" &
child=$!
stop() {
  trap '' TERM INT
  echo "[start] stopping (signal received)"
  kill -INT "$child" 2>/dev/null || true
  for _ in $(seq $((${STOP_GRACE_S:-20} * 5))); do
    kill -0 "$child" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL -- "-$child" 2>/dev/null || true  # the group: webserver, daemon, runs
  wait "$child" 2>/dev/null || true
  exit 0
}
trap stop TERM INT HUP
wait "$child" || status=$?
# dagster dev ended by itself: take its group with it.
kill -TERM -- "-$child" 2>/dev/null || true
exit "${status:-0}"
