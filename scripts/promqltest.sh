#!/usr/bin/env bash
# Prometheus' own PromQL tests against annals: fetches the `.test` files of Prometheus
# 2.42 (promql/testdata/, the version annals follows; Prometheus' files, so they are not
# committed here) into target/promqltest/, then runs them with
# `cargo run --release --example promqltest` and prints passed/total per file.
# Skips (exit 0) when the files cannot be fetched.
#
#   scripts/promqltest.sh [--verbose]     (--verbose: each failing eval and why)
set -euo pipefail
cd "$(dirname "$0")/.."
version=v2.42.0
files=(aggregators at_modifier collision functions histograms literals operators selectors staleness subquery trig_functions)
dir=target/promqltest/$version
mkdir -p "$dir"
for f in "${files[@]}"; do
    if [[ ! -s $dir/$f.test ]]; then
        url=https://raw.githubusercontent.com/prometheus/prometheus/$version/promql/testdata/$f.test
        if ! curl -sfL --max-time 30 -o "$dir/$f.test.part" "$url"; then
            rm -f "$dir/$f.test.part"
            echo "SKIP: $url could not be fetched; the PromQL test files were not run" >&2
            exit 0
        fi
        mv "$dir/$f.test.part" "$dir/$f.test"
    fi
done
paths=()
for f in "${files[@]}"; do
    paths+=("$dir/$f.test")
done
cargo run --release --example promqltest -- "$@" "${paths[@]}"
