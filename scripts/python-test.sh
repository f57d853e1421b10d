#!/usr/bin/env bash
# Builds and installs the Python package the way a user does (`pip install .`, which fetches
# maturin from PyPI) into a virtual environment in target/python-venv, then runs its tests
# (python/tests, pytest) and, unless --quick, its benchmark against SQLite.
#
#   scripts/python-test.sh [--quick] [pytest arguments...]
#
# --quick (CI): the tests with the shorter sizes of ANNALS_PY_QUICK=1 and the benchmark at
# a small scale. The round trips with the command-line tool use target/release/annals
# (built here when missing).
#
# ANNALS_PYTHON=/path/to/python3.9 picks the interpreter (default python3); each
# interpreter gets its own venv, target/python-venv-<its version>.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [[ "${1:-}" == "--quick" ]]; then
    quick=1
    shift
fi

python=${ANNALS_PYTHON:-python3}
if [[ -n "${ANNALS_PYTHON:-}" ]]; then
    venv=target/python-venv-$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
else
    venv=target/python-venv
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
echo "== $("$venv/bin/python" --version) in $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check pytest 'pyarrow>=14' pandas

echo "== pip install . (maturin builds annals._annals)"
started=$(date +%s)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps .
echo "   built and installed in $(( $(date +%s) - started )) s"

if [[ ! -x target/release/annals ]]; then
    cargo build --release --bin annals
fi
export ANNALS_BIN="$PWD/target/release/annals"
if [[ $quick == 1 ]]; then
    export ANNALS_PY_QUICK=1
fi

echo "== pytest python/tests"
# From another directory, so `import annals` is the installed package, not the source tree.
(cd python/tests && "../../$venv/bin/python" -m pytest -q "$@" .)

echo "== benchmark against SQLite (python/benches/vs_sqlite.py)"
if [[ $quick == 1 ]]; then
    "$venv/bin/python" python/benches/vs_sqlite.py --quick
else
    "$venv/bin/python" python/benches/vs_sqlite.py
fi
