"""Console scripts print nothing on stderr that the operator cannot act on.

Pyramid 2.1 imports pkg_resources, whose deprecation warning used to open
every script's output (stethoscope/__init__.py silences exactly that one).
Each installed script is run as an operator would run it, from the
virtualenv's bin directory.
"""

import os
import re
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
SCRIPTS = sorted(
    entry.name
    for entry in distribution("stethoscope").entry_points
    if entry.group == "console_scripts"
)


def test_every_console_script_is_covered():
    assert "stethoscope-models" in SCRIPTS
    assert len(SCRIPTS) >= 9


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_prints_no_warning(script):
    done = subprocess.run(
        [BIN / script, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout
    assert "Warning" not in done.stderr
    assert done.stderr == ""


def test_a_command_that_fails_prints_only_its_error(tmp_path):
    ini = tmp_path / "missing.ini"
    ini.write_text(
        "[app:main]\nuse = egg:stethoscope\n"
        f"sqlalchemy.url = sqlite:///{tmp_path}/no/such/dir/x.sqlite\n"
        "stethoscope.secret = a-secret-of-at-least-thirty-two-characters\n"
    )
    done = subprocess.run(
        [BIN / "stethoscope-models", str(ini), "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Warning" not in done.stderr
    assert done.stderr.startswith("error:")


ROOT = Path(__file__).resolve().parents[2]


def pserve_warnings_settings() -> dict[str, str]:
    """The PYTHONWARNINGS that `make run` and the systemd unit give pserve."""
    makefile = (ROOT / "Makefile").read_text()
    unit = (ROOT / "config" / "systemd" / "stethoscope@.service").read_text()
    return {
        "Makefile": re.search(
            r"^PSERVE = PYTHONWARNINGS='([^']+)'", makefile, re.M
        ).group(1),
        "systemd unit": re.search(
            r'^Environment="PYTHONWARNINGS=([^"]+)"', unit, re.M
        ).group(1),
    }


@pytest.mark.parametrize("where", ["Makefile", "systemd unit"])
def test_pserve_as_we_start_it_prints_no_warning(where):
    setting = pserve_warnings_settings()[where]
    bare = subprocess.run(
        [BIN / "pserve", "--help"], capture_output=True, text=True, timeout=120
    )
    done = subprocess.run(
        [BIN / "pserve", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": setting},
    )
    # Pyramid's own script warns unless told not to; as we start it, it is.
    assert "pkg_resources" in bare.stderr
    assert done.returncode == 0
    assert done.stderr == ""
