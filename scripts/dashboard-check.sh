#!/usr/bin/env bash
# The dashboard page in a real browser: writes demo data to a temporary store, starts
# `annals serve` on 127.0.0.1, loads http://ADDR/ in headless Chromium (Debian's
# `chromium`, installed with apt-get when missing), saves a screenshot, and checks from the
# rendered DOM that all four charts drew and that a log search shows hits.
#
#   scripts/dashboard-check.sh [SCREENSHOT.png]     (default: target/dashboard.png)
#
# ANNALS_BIN picks the binary (default: target/release/annals, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
shot=${1:-target/dashboard.png}
bin=${ANNALS_BIN:-target/release/annals}
if [[ ! -x $bin ]]; then
    cargo build --release --bin annals
fi
if ! command -v chromium >/dev/null; then
    echo "installing chromium (apt-get)" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null 2>&1; then
        echo "SKIP: chromium is not installed and apt-get could not install it; the page was not checked" >&2
        exit 0
    fi
fi
. scripts/lib/serve-demo.sh
serve_demo 7

url="$address/#q=worker%20pool"
browser=(chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile"
         --window-size=1400,1750 --virtual-time-budget=20000)
"${browser[@]}" --screenshot="$work/shot.png" "$url" 2>/dev/null
"${browser[@]}" --dump-dom "$url" 2>/dev/null >"$work/dom.html"

drawn=$(sed -n 's/.*data-charts-drawn="\([0-9]*\)".*/\1/p' "$work/dom.html" | head -1)
hits=$(sed -n 's/.*data-search-hits="\(-\?[0-9]*\)".*/\1/p' "$work/dom.html" | head -1)
drawn=${drawn:-0}
hits=${hits:--1}
paths=$(grep -o '<path ' "$work/dom.html" | wc -l)
rects=$(grep -o '<rect ' "$work/dom.html" | wc -l)
marks=$(grep -o '<mark>' "$work/dom.html" | wc -l)
shot_bytes=$(stat -c %s "$work/shot.png")
mkdir -p "$(dirname "$shot")"
cp "$work/shot.png" "$shot"
echo "charts drawn: $drawn of 4 ($paths lines, $rects bars); search hits: $hits ($marks highlights); screenshot: $shot ($shot_bytes bytes)"
status=0
[[ $drawn == 4 ]] || { echo "FAIL: not every chart drew" >&2; status=1; }
(( paths >= 8 )) || { echo "FAIL: the metric chart has fewer than 8 host lines" >&2; status=1; }
(( hits > 0 && marks > 0 )) || { echo "FAIL: the search showed no highlighted hits" >&2; status=1; }
(( shot_bytes > 30000 )) || { echo "FAIL: the screenshot looks blank" >&2; status=1; }
exit $status
