"""examples/cli_script.py runs by itself, on time, against the store it embeds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from cli_helpers import ROOT

SCRIPT = ROOT / "examples" / "cli_script.py"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        check=False,
    )


def test_the_script_runs_for_the_seconds_asked_and_exits_0():
    started = time.monotonic()
    done = run_script("--seconds", "1.5")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert took < 20
    summary = done.stdout.splitlines()[-1]
    found = re.fullmatch(
        r"(\d+) searches in (\d+\.\d) s: (\d+) answered, (\d+) failed, (\d+) cancelled; "
        r"(\d+) attempts sent, (\d+) retries",
        summary,
    )
    assert found, summary
    searches, seconds, answered, failed, cancelled, attempts, _retries = (
        float(x) for x in found.groups()
    )
    assert 1.4 <= seconds < 10
    assert searches == answered + failed + cancelled and answered > 0
    assert attempts >= answered
    assert "the store starts rate limiting" in done.stdout


def test_the_script_refuses_a_run_of_no_length():
    done = run_script("--seconds", "0")
    assert done.returncode == 2 and "--seconds" in done.stderr
