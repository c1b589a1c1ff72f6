"""tools/system-deps.sh picks the packages of the Python it is asked for.

Run with apt-get replaced by a script that only says what it was asked, so
nothing is installed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path, python: str) -> subprocess.CompletedProcess:
    fake = tmp_path / "apt-get"
    fake.write_text('#!/bin/sh\necho "apt-get $*"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PYTHON": python}
    return subprocess.run(
        ["bash", str(ROOT / "tools" / "system-deps.sh"), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("python", ["python3.99", "/usr/bin/python3.99"])
def test_a_python_that_is_missing_is_installed_with_its_own_venv(tmp_path, python):
    result = run(tmp_path, python)
    assert "install -y --no-install-recommends python3.99 python3.99-venv" in (
        result.stdout
    )
    # The fake installed nothing: the check that follows says so.
    assert result.returncode != 0


def test_a_python_that_is_there_needs_nothing(tmp_path):
    result = run(tmp_path, sys.executable)
    assert (result.returncode, result.stdout) == (0, "")
