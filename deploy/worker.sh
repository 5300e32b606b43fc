#!/usr/bin/env bash
# Starts a dlc-platform Celery worker with the platform's settings:
#   deploy/worker.sh gpu [CONCURRENCY]     on a GPU machine (concurrency <= its GPUs)
#   deploy/worker.sh cpu [CONCURRENCY]     anywhere (the non-inference steps)
# Reads /etc/dlc-platform/platform.env (or $DLC_PLATFORM_ENV) when present. SIGTERM or
# Ctrl-C stop it within 30 s (running steps get a warm shutdown first).
set -euo pipefail
cd "$(dirname "$0")/.."
queue=${1:?usage: deploy/worker.sh gpu|cpu|QUEUE [CONCURRENCY]}
concurrency=${2:-1}
envfile=${DLC_PLATFORM_ENV:-/etc/dlc-platform/platform.env}
if [ -f "$envfile" ]; then
  set -a; . "$envfile"; set +a
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec .venv/bin/dlc-platform worker --queue "$queue" --concurrency "$concurrency"
