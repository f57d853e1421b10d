#!/usr/bin/env bash
# A real Loki client pushes Loghub files into annals, and Loki's query API reads them back:
# `python-logging-loki` (PyPI; a logging handler that pushes each record to
# /loki/api/v1/push as Loki's JSON) logs every line of each Loghub 2k file with the labels
# {job="loghub", file="<name>"}. Then, through /loki/api/v1/query_range:
#   - each file's stream, read forward, is exactly the file's lines in order (every line
#     arrived, once);
#   - sum(count_over_time(...)) equals the number of lines pushed;
#   - line filters (|=, !=, |~) count what Python's own filtering of the file counts.
# promtail is not packaged by Debian (its `loki` package is another program), so a Python
# client stands in for it.
#
#   scripts/loki-client.sh [--quick]      (--quick: two files; default: every Loghub file)
#
# ANNALS_BIN picks the binary (default: target/release/annals, built when missing);
# LOGHUB the corpus (default: ../shared/data/loghub).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[[ ${1:-} == --quick ]] && quick=1
bin=${ANNALS_BIN:-target/release/annals}
loghub=${LOGHUB:-../shared/data/loghub}
if [[ ! -d $loghub ]]; then
    echo "SKIP: no Loghub corpus at $loghub" >&2
    exit 0
fi
if [[ ! -x $bin ]]; then
    cargo build --release --bin annals
fi
venv=target/loki-client-venv
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import logging_loki' 2>/dev/null; then
    echo "installing python-logging-loki (pip) into $venv" >&2
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q python-logging-loki==0.3.1; } >&2; then
        echo "SKIP: python-logging-loki could not be installed; nothing was pushed" >&2
        exit 0
    fi
fi

work=$(mktemp -d)
server=
trap 'if [[ -n $server ]]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi; rm -rf "$work"' EXIT
"$bin" --data "$work/data" serve --listen 127.0.0.1:0 2>"$work/serve.log" &
server=$!
address=
for _ in $(seq 1 100); do
    address=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1 || true)
    [[ -n $address ]] && break
    sleep 0.1
done
if [[ -z $address ]]; then
    echo "the server did not start:" >&2
    cat "$work/serve.log" >&2
    exit 1
fi

files=$(find "$loghub" -name '*_2k.log' | sort)
if ((quick)); then
    files=$(echo "$files" | grep -E '/(HDFS|Apache)_2k.log$')
fi

"$venv/bin/python" - "$address" $files <<'PY'
import json, logging, re, sys, time, urllib.parse, urllib.request
import logging_loki

address, paths = sys.argv[1], sys.argv[2:]
started = time.time_ns()
pushed = {}
for path in paths:
    name = path.rsplit("/", 1)[-1]
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [line.rstrip("\n").rstrip("\r") for line in f]
    handler = logging_loki.LokiHandler(url=f"{address}/loki/api/v1/push", tags={"job": "loghub", "file": name}, version="1")
    # The client does not retry, and by default prints a failed push and goes on: here a
    # failed push fails the run.
    def fail(record):
        raise
    handler.handleError = fail
    logger = logging.getLogger(f"loghub.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    t0 = time.time()
    for line in lines:
        logger.info(line)
    handler.close()
    pushed[name] = lines
    print(f"{name}: pushed {len(lines)} lines in {time.time() - t0:.1f} s", file=sys.stderr)
ended = time.time_ns() + 1

def get(route, **params):
    url = f"{address}{route}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)

failures = 0
def check(what, got, want):
    global failures
    if got != want:
        failures += 1
        print(f"FAIL {what}: annals {got!r}, expected {want!r}", file=sys.stderr)

span = dict(start=str(started), end=str(ended))
for name, lines in pushed.items():
    selector = f'{{job="loghub", file="{name}"}}'
    answer = get("/loki/api/v1/query_range", query=selector, limit="5000", direction="forward", **span)
    streams = answer["data"]["result"]
    got = [value[1] for stream in streams for value in stream["values"]]
    check(f"{name}: the lines read back", got, lines)
    check(f"{name}: labels", [s["stream"] for s in streams], [{"file": name, "job": "loghub", "level": "info", "logger": f"loghub.{name}"}])
    for query, keep in [
        (f'{selector} |= "0"', lambda l: "0" in l),
        (f'{selector} != "0" |= "e"', lambda l: "0" not in l and "e" in l),
        (f'{selector} |~ "[0-9]{{4}}"', lambda l: re.search("[0-9]{4}", l) is not None),
    ]:
        counted = get("/loki/api/v1/query", query=f"sum(count_over_time({query} [1h]))", time=str(ended))
        result = counted["data"]["result"]
        got = int(result[0]["value"][1]) if result else 0
        check(f"{name}: {query}", got, sum(1 for l in lines if keep(l)))
total = get("/loki/api/v1/query", query='sum(count_over_time({job="loghub"}[1h]))', time=str(ended))
check("every line, once", int(total["data"]["result"][0]["value"][1]), sum(len(l) for l in pushed.values()))
labels = get("/loki/api/v1/label/file/values", **span)["data"]
check("file label values", labels, sorted(pushed))
print(f"{len(pushed)} files, {sum(len(l) for l in pushed.values())} lines: {'all equal' if not failures else f'{failures} checks FAILED'}")
sys.exit(1 if failures else 0)
PY
