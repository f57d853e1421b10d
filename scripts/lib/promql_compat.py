"""Compares the answers of Prometheus and annals to the same PromQL queries.

    python3 promql_compat.py PROMETHEUS_URL ANNALS_URL QUERIES_FILE

Both servers must hold the same samples up to a time in the past: the queries are
evaluated at T (ten seconds ago, on a whole second) and over [T - 60 s, T] in steps of
5 s. Before comparing, it waits (up to 60 s) until annals has as many `up` samples as
Prometheus, so that remote write has caught up. Equal means the same result type, the
same series (label sets), the same timestamps and values within 1e-9 relative (1e-12
absolute near zero, NaN equal to NaN), or the same error type from both. Exits 1 when
fewer than 95% of the queries are equal in both modes.
"""

import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REL = 1e-9
ABS = 1e-12
TARGET = 0.95


def get(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        try:
            return json.loads(error.read())
        except ValueError:
            return {"status": "error", "errorType": f"http {error.code}", "error": ""}


def number(text):
    return float(text.replace("+Inf", "inf").replace("-Inf", "-inf"))


def normalize(answer):
    """(kind, {labels: [(t, v)]}) of an answer, or ("error", errorType)."""
    if answer.get("status") != "success":
        return "error", answer.get("errorType"), answer.get("error", "")
    data = answer["data"]
    kind = data["resultType"]
    series = {}
    if kind in ("scalar", "string"):
        t, v = data["result"]
        series[()] = [(float(t), v if kind == "string" else number(v))]
    elif kind == "vector":
        for s in data["result"]:
            series[tuple(sorted(s["metric"].items()))] = [(float(s["value"][0]), number(s["value"][1]))]
    else:
        for s in data["result"]:
            series[tuple(sorted(s["metric"].items()))] = [(float(t), number(v)) for t, v in s["values"]]
    return kind, series, ""


def close(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


def difference(expected, got):
    """None when equal, else a short description."""
    if expected[0] == "error" or got[0] == "error":
        if expected[0] == got[0] and expected[1] == got[1]:
            return None
        return f"prometheus {describe(expected)}, annals {describe(got)}"
    if expected[0] != got[0]:
        return f"result type {expected[0]} != {got[0]}"
    e, g = expected[1], got[1]
    missing = [k for k in e if k not in g]
    extra = [k for k in g if k not in e]
    if missing or extra:
        return f"series: {len(missing)} missing (e.g. {fmt(missing[:1])}), {len(extra)} extra (e.g. {fmt(extra[:1])}), {len(e)} expected"
    for labels, points in e.items():
        mine = g[labels]
        if [t for t, _ in points] != [t for t, _ in mine]:
            return f"timestamps of {fmt([labels])}: {len(points)} expected, {len(mine)} got"
        for (t, a), (_, b) in zip(points, mine):
            if not close(a, b):
                return f"value of {fmt([labels])} at {t}: prometheus {a!r}, annals {b!r}"
    return None


def describe(n):
    if n[0] == "error":
        return f"error {n[1]} ({n[2][:120]})"
    return f"{n[0]} of {len(n[1])} series"


def fmt(keys):
    return ", ".join("{" + ",".join(f"{k}={v!r}" for k, v in labels) + "}" for labels in keys) or "-"


def main():
    prometheus, annals, path = sys.argv[1], sys.argv[2], sys.argv[3]
    queries = [line.strip() for line in open(path) if line.strip() and not line.lstrip().startswith("#")]
    at = float(int(time.time()) - 10)
    # Wait until annals has every `up` sample Prometheus has over the last 10 minutes.
    probe = {"query": "count_over_time(up[10m])", "time": at}
    for _ in range(60):
        want, have = normalize(get(prometheus, "/api/v1/query", probe)), normalize(get(annals, "/api/v1/query", probe))
        if difference(want, have) is None:
            break
        time.sleep(1)
    else:
        print(f"annals has not caught up with Prometheus: {difference(want, have)}")
        return 1
    instant_equal = range_equal = both_equal = 0
    for query in queries:
        modes = [
            ("instant", "/api/v1/query", {"query": query, "time": at}),
            ("range", "/api/v1/query_range", {"query": query, "start": at - 60, "end": at, "step": 5}),
        ]
        equal = []
        for mode, route, params in modes:
            diff = difference(normalize(get(prometheus, route, params)), normalize(get(annals, route, params)))
            equal.append(diff is None)
            if diff is not None:
                print(f"DIFF {mode:7} {query}\n     {diff}")
        instant_equal += equal[0]
        range_equal += equal[1]
        both_equal += all(equal)
    n = len(queries)
    share = both_equal / n
    print(f"{both_equal}/{n} queries equal in both modes ({100 * share:.1f}%); instant {instant_equal}/{n}, range {range_equal}/{n}")
    if share < TARGET:
        print(f"FAIL: below the target of {100 * TARGET:.0f}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
