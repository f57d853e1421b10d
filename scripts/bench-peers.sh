#!/bin/sh
# Installs the benchmark peers that annals-bench runs as separate processes.
#
#   scripts/bench-peers.sh [victoria-metrics|prometheus|influxd]
#
# VictoriaMetrics comes from Debian's `victoria-metrics` package, Prometheus from its
# `prometheus` package (2.42), InfluxDB's `influxd` from its `influxdb` package (1.6). Each is
# installed with
# apt-get when this runs as root (or with passwordless sudo); otherwise the script says
# why not and exits 1, and annals-bench reports the peer as "not available".
set -eu

want="${1:-victoria-metrics}"
case "$want" in
victoria-metrics) package=victoria-metrics ;;
prometheus) package=prometheus ;;
influxd) package=influxdb ;;
*)
    echo "bench-peers.sh: unknown peer $want (known: victoria-metrics, prometheus, influxd)" >&2
    exit 2
    ;;
esac

if command -v "$want" >/dev/null 2>&1; then
    echo "$want: $(command -v "$want")"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench-peers.sh: $want is missing and there is no apt-get to install it" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    echo "bench-peers.sh: $want is missing and installing $package needs root" >&2
    exit 1
fi
echo "bench-peers.sh: installing $package"
# The package's service is not started: annals-bench starts its own process on 127.0.0.1.
if ! $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >/dev/null; then
    $as_root apt-get update -q >/dev/null
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >/dev/null
fi
command -v "$want"
