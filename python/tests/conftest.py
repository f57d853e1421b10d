"""Shared fixtures of the Python package's tests (run by scripts/python-test.sh)."""

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

import annals

#: Smaller sizes for CI's quick run (ANNALS_PY_QUICK=1).
QUICK = os.environ.get("ANNALS_PY_QUICK") == "1"


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def history(store_dir: Path):
    with annals.History(store_dir) as h:
        yield h


@pytest.fixture
def seed(request) -> int:
    """A seed per test, printed when the test fails (ANNALS_TEST_SEED overrides it)."""
    value = int(os.environ.get("ANNALS_TEST_SEED", random.SystemRandom().randrange(2**32)))
    request.node.user_properties.append(("seed", value))
    print(f"seed {value} (rerun with ANNALS_TEST_SEED={value})")
    return value


def annals_bin() -> str:
    """The command-line tool: $ANNALS_BIN, else target/release/annals beside the sources."""
    path = os.environ.get("ANNALS_BIN") or str(Path(__file__).resolve().parents[2] / "target" / "release" / "annals")
    if not Path(path).exists() and shutil.which("annals") is None:
        pytest.skip(f"the annals command-line tool is not built at {path} (scripts/python-test.sh builds it)")
    return path if Path(path).exists() else "annals"


def run_cli(*args: str, input: bytes = None) -> str:
    done = subprocess.run([annals_bin(), *args], input=input, capture_output=True, timeout=300)
    assert done.returncode == 0, f"annals {' '.join(args)} exited {done.returncode}: {done.stderr.decode()}"
    return done.stdout.decode()
