#!/usr/bin/env bash
# Installs Debian's redis-server for the dist benchmark's asynq row, if it
# is not there yet. CI runs it; the benchmark starts and stops its own
# redis-server (appendonly yes, in a temporary directory) and skips the
# asynq row where there is none.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
bash "$(dirname "$0")/apt-install.sh" --no-install-recommends redis-server
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
# Debian starts the service on install; the benchmark runs its own.
$sudo service redis-server stop >/dev/null 2>&1 || true
