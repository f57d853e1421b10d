#!/usr/bin/env bash
# PromQL compatibility measured against Prometheus itself. Debian's `prometheus` (2.42;
# installed with apt-get when missing and possible) runs on 127.0.0.1, scraping itself
# every second and remote-writing to `annals serve`. After a while both hold the same
# samples; every query of scripts/lib/promql-queries.txt is then sent to both, as an
# instant query and as a range query over the last minute, and the answers are compared:
# the same series, the same timestamps, values within 1e-9 relative. Prints each query
# that differs and the share that is equal; fails below 95%.
#
#   scripts/promql-compat.sh [--quick]    (--quick: 40 s of samples instead of 180 s)
#
# ANNALS_BIN picks the binary (default: target/release/annals, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=180
if [[ ${1:-} == --quick ]]; then
    seconds=40
fi
bin=${ANNALS_BIN:-target/release/annals}
if [[ ! -x $bin ]]; then
    cargo build --release --bin annals
fi
if ! command -v prometheus >/dev/null; then
    echo "installing prometheus (apt-get)" >&2
    if ! { apt-get install -y -q prometheus >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q prometheus >/dev/null 2>&1; }; }; then
        echo "SKIP: prometheus could not be installed; PromQL compatibility was not measured" >&2
        exit 0
    fi
fi
# Debian's package starts a service of its own; this script runs its own process.
work=$(mktemp -d)
annals_pid=
prometheus_pid=
cleanup() {
    for pid in $prometheus_pid $annals_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" --data "$work/annals" serve --listen 127.0.0.1:0 2>"$work/annals.log" &
annals_pid=$!
annals=
for _ in $(seq 1 100); do
    annals=$(grep -o 'http://[0-9.:]*' "$work/annals.log" | head -1 || true)
    [[ -n $annals ]] && break
    sleep 0.1
done
if [[ -z $annals ]]; then
    echo "annals did not start:" >&2
    cat "$work/annals.log" >&2
    exit 1
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1m
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$port"]
remote_write:
  - url: $annals/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 5000
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn 2>"$work/prometheus.log" &
prometheus_pid=$!
echo "prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') on 127.0.0.1:$port, annals on $annals; collecting ${seconds} s of samples" >&2
sleep "$seconds"
if ! kill -0 "$prometheus_pid" 2>/dev/null; then
    echo "prometheus stopped:" >&2
    cat "$work/prometheus.log" >&2
    exit 1
fi

python3 scripts/lib/promql_compat.py "http://127.0.0.1:$port" "$annals" scripts/lib/promql-queries.txt
