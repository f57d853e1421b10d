#!/usr/bin/env bash
# Runs every fuzz target (or only the TARGETs named) for SECONDS each (default 10) and
# prints executions per target.
#
#   fuzz/run-all.sh 60
#   fuzz/run-all.sh 600 wal segment
#
# cargo-fuzz needs nightly compiler flags: the installed nightly toolchain is used when
# `rustup toolchain list` shows one, otherwise the stable one with RUSTC_BOOTSTRAP=1.
# cargo-fuzz is installed from crates.io when missing. Seeds (committed) are in fuzz/seeds/,
# the growing corpus in fuzz/corpus/ (ignored by git); crashes land in fuzz/artifacts/.
set -euo pipefail
seconds="${1:-10}"
shift || true
cd "$(dirname "$0")"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
    echo "fuzzing with the nightly toolchain: $(rustup run nightly rustc --version)"
else
    toolchain=()
    export RUSTC_BOOTSTRAP=1
    echo "fuzzing with stable and RUSTC_BOOTSTRAP=1: $(rustc --version)"
fi
targets=$(cargo "${toolchain[@]}" fuzz list)
if [ $# -gt 0 ]; then
    for wanted in "$@"; do
        if ! grep -qx "$wanted" <<<"$targets"; then
            echo "unknown fuzz target '$wanted'; the targets are:" $targets >&2
            exit 2
        fi
    done
    targets="$*"
fi
cargo "${toolchain[@]}" fuzz build --release
status=0
for target in $targets; do
    # New inputs go to corpus/ (not committed); the committed seeds/ are only read.
    mkdir -p "corpus/$target" "seeds/$target"
    log=$(mktemp)
    if cargo "${toolchain[@]}" fuzz run --release "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
        runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -1 | grep -Eo '[0-9]+' || echo "?")
        echo "$target: $runs executions in ${seconds}s, no crash"
    else
        echo "$target: FAILED (see below; the input is in fuzz/artifacts/$target/)"
        tail -40 "$log"
        status=1
    fi
    rm -f "$log"
done
exit $status
