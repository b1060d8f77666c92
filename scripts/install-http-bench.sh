#!/usr/bin/env bash
# Installs what the out-of-process HTTP benchmark (BenchmarkServeWrk in
# bench/) needs from Debian's packages, if it is not there yet: wrk (the
# load), gcc (builds the minimal C responder, the ceiling row), python3 with
# uvloop (the uvloop reference row). The benchmark skips a row whose tool
# is missing, with a message.
set -euo pipefail
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
/usr/bin/python3 -c 'import uvloop' >/dev/null 2>&1 || need+=(python3-uvloop)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
bash "$(dirname "$0")/apt-install.sh" --no-install-recommends "${need[@]}"
