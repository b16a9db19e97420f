"""Helpers for the CLI tests: run ``python -m connmgr``, piped or on a pseudo-terminal.

A module of its own (not conftest.py) so the test files can import it by a
name no other test directory uses.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "TtyRun", "run", "run_merged", "run_on_tty"]

ROOT = Path(__file__).resolve().parents[2]
_PLAIN = {"TERM": "dumb", "PYTHONUNBUFFERED": "1"}


def run(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``python -m connmgr ARGS`` with stdout and stderr piped apart (plain lines)."""
    return subprocess.run(
        [sys.executable, "-m", "connmgr", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **_PLAIN},
        cwd=ROOT,
        check=False,
    )


def run_merged(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``python -m connmgr ARGS 2>&1 | ...``: stdout and stderr share one pipe."""
    return subprocess.run(
        [sys.executable, "-m", "connmgr", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env={**os.environ, **_PLAIN},
        cwd=ROOT,
        check=False,
    )


@dataclass(frozen=True)
class TtyRun:
    """What a command run on a pseudo-terminal did."""

    returncode: int
    tty: str  # everything written to the terminal (stderr, and stdout when shared)
    stdout: bytes  # stdout, when it was a pipe


def run_on_tty(*args: str, stdout_on_tty: bool = False, timeout: float = 30.0) -> TtyRun:
    """Run ``python -m connmgr ARGS`` with stderr on a pseudo-terminal, as a person would.

    stdout is a pipe (``connmgr get URL > file``) unless ``stdout_on_tty``.
    """
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "connmgr", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave if stdout_on_tty else subprocess.PIPE,
        stderr=slave,
        env=env,
        cwd=ROOT,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise TimeoutError(f"connmgr {' '.join(args)} ran past {timeout} s")
        out = process.stdout.read() if process.stdout is not None else b""
        code = process.wait(timeout=5)
    finally:
        os.close(master)
        if process.stdout is not None:
            process.stdout.close()
    return TtyRun(code, b"".join(chunks).decode("utf-8", "replace"), out)
