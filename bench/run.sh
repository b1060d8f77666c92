#!/usr/bin/env bash
# Runs the side-by-side benchmarks and prints a benchstat table with one
# column per implementation (the "impl=" part of each benchmark's name).
#
#   bench/run.sh                 # every benchmark, 6 runs each
#   bench/run.sh 'Group' 10      # benchmarks matching Group, 10 runs each
#
# Raw results are kept in bench/results/latest.txt.
set -euo pipefail
cd "$(dirname "$0")"
pattern=${1:-.}
count=${2:-6}
mkdir -p results
go test -run '^$' -bench "$pattern" -benchmem -count "$count" -timeout 60m . | tee results/latest.txt
echo
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da -col /impl results/latest.txt
