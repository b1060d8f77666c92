#!/usr/bin/env bash
# Installs Debian's chromium for the monitor's browser test, if it is not
# there yet. CI runs it; on a workstation, run it once (as root) to have the
# browser test run instead of skip.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
bash "$(dirname "$0")/apt-install.sh" chromium
