#!/usr/bin/env bash
# Installs Debian packages (the arguments, apt-get options allowed), as root or through sudo,
# without questions: what the install-*.sh scripts share.
set -euo pipefail
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q || true
$sudo apt-get install -y -q "$@"
