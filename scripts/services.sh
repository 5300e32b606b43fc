#!/usr/bin/env bash
# Installs the system services the test suite uses, when missing (idempotent):
# Debian's PostgreSQL (production-instance tests), Redis (the Celery broker of the
# scale-out tests) and Chromium (UI screenshot test). The tests start their own servers
# on 127.0.0.1, on free ports, with data under their temporary folders (tests/services.py).
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[services] installing ${need[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts a cluster / a redis-server on install where systemd runs; the tests start
# their own and never use those.
