#!/usr/bin/env bash
# Installs Debian's tmux for loom top's terminal test (it drives loom top
# in a real terminal and reads the screen), if it is not there yet. The
# test skips with a message where there is none.
set -euo pipefail
if command -v tmux >/dev/null 2>&1; then
  exit 0
fi
bash "$(dirname "$0")/apt-install.sh" --no-install-recommends tmux
