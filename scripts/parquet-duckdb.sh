#!/usr/bin/env bash
# DuckDB (from PyPI, in a virtualenv under target/) reads the Parquet exports of annals:
# a store of demo data is exported with `annals export --format parquet` (metrics and log
# records), and DuckDB's counts and sums per group over the files must equal those annals
# answers for the same queries. Also reads the server's export of the same query and checks
# it is byte for byte the CLI's file.
#
#   scripts/parquet-duckdb.sh [DAYS]      (default 3 days of demo data)
#
# ANNALS_BIN picks the binary (default: target/release/annals, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-3}
bin=${ANNALS_BIN:-target/release/annals}
if [[ ! -x $bin ]]; then
    cargo build --release --bin annals
fi
venv=target/duckdb-venv
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
    echo "installing duckdb (pip) into $venv" >&2
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q duckdb; } >&2; then
        echo "SKIP: duckdb could not be installed; the Parquet files were not read" >&2
        exit 0
    fi
fi
. scripts/lib/serve-demo.sh
serve_demo "$days"

curl -sf -X POST "$address/history/metrics/export?format=parquet" \
    -d '{"measurement": "cpu", "field": "usage_percent"}' -o "$work/cpu-http.parquet"
# The CLI opens the store itself: the server lets go of it first.
kill "$server"
wait "$server" || true
server=
"$bin" --data "$work/data" export -m cpu -f usage_percent --format parquet -o "$work/cpu.parquet"
"$bin" --data "$work/data" export -m log --format parquet -o "$work/log.parquet"
cmp "$work/cpu.parquet" "$work/cpu-http.parquet"
"$bin" --data "$work/data" query -m cpu -f usage_percent --agg count,sum --group-by host --format csv >"$work/cpu-annals.csv"
"$bin" --data "$work/data" query -m log -f message --agg count --group-by level --format csv >"$work/log-annals.csv"

"$venv/bin/python" - "$work" <<'PY'
import csv, math, sys
import duckdb

work = sys.argv[1]

def annals_groups(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return {row[0]: [float(v) for v in row[1:]] for row in rows[1:]}

def same(a, b):
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in zip(a, b)) and len(a) == len(b)

failures = 0
checks = [
    ("cpu", f"select host, count(usage_percent), sum(usage_percent) from '{work}/cpu.parquet' group by host",
     annals_groups(f"{work}/cpu-annals.csv")),
    ("log", f"select level, count(message) from '{work}/log.parquet' group by level",
     annals_groups(f"{work}/log-annals.csv")),
]
for name, sql, expected in checks:
    got = {row[0]: [float(v) for v in row[1:]] for row in duckdb.sql(sql).fetchall()}
    if got.keys() != expected.keys() or not all(same(got[k], expected[k]) for k in got):
        print(f"FAIL {name}: DuckDB {got} != annals {expected}")
        failures += 1
    else:
        rows = int(sum(v[0] for v in got.values()))
        print(f"ok   {name}: {len(got)} groups, {rows} rows, DuckDB equals annals")
types = dict(duckdb.sql(f"select column_name, column_type from (describe select * from '{work}/cpu.parquet')").fetchall())
if "TIMESTAMP" not in types.get("time", ""):
    print(f"FAIL time column type {types.get('time')}")
    failures += 1
print(f"column types: {types}")
sys.exit(1 if failures else 0)
PY
echo "ok   the server's export equals the CLI's file"
