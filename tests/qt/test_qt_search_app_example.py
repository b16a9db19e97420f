"""examples/qt_search_app.py runs offscreen and quits by itself with exit status 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "examples" / "qt_search_app.py"


@pytest.mark.slow
@pytest.mark.parametrize("store", ["Healthy", "Flaky"])
def test_the_search_app_runs_3_seconds_and_exits_0(store):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, str(APP), "--seconds", "3", "--store", store],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    found = re.search(r"searches: (\d+) answered, (\d+) failed", done.stdout)
    assert found, done.stdout
    assert int(found.group(1)) >= 1  # it did search, through the runner, and got answers


def test_bad_seconds_are_refused():
    done = subprocess.run(
        [sys.executable, str(APP), "--seconds", "-1"],
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--seconds" in done.stderr
