#!/usr/bin/env bash
# Vendors uPlot (the monitor page's charts) from npm into monitor/static,
# where go:embed serves it: the page must work with no network. Run it to
# move to another version; the files it writes are committed.
set -euo pipefail
version=${1:-1.6.32}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "uplot@$version" >/dev/null && tar xzf "uplot-$version.tgz")
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" monitor/static/
cp "$tmp/package/LICENSE" monitor/static/uPlot.LICENSE
echo "uPlot $version vendored into monitor/static"
