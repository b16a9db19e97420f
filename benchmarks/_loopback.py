"""Shared loopback set-up for the benchmarks: a FaultServer in its own process, core pinning,
and client CPU per request (with the transport's watchdog thread counted on connmgr's side).
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from connmgr.watchdog import WATCHDOG

_CHILD = """
import os, sys
from connmgr.testing import FaultServer
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # the other core than the client
with FaultServer() as server:
    print(server.url, flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def server_process() -> Iterator[str]:
    """A FaultServer in a child process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the FaultServer child process did not start")
        yield url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _watchdog_cpu() -> float:
    thread = WATCHDOG.thread
    if thread is None or thread.ident is None or not hasattr(time, "pthread_getcpuclockid"):
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def cpu_per_request(get: Callable[[], object], n: int, *, watchdog: bool = False) -> float:
    """CPU seconds per call of ``get`` on this thread (plus the watchdog's, if asked)."""
    gc.collect()
    wd = _watchdog_cpu() if watchdog else 0.0
    started = time.thread_time()
    for _ in range(n):
        get()
    spent = time.thread_time() - started
    if watchdog:
        spent += _watchdog_cpu() - wd
    return spent / n


@contextlib.contextmanager
def pinned() -> Iterator[None]:
    """Pin this process to one core (the server child takes another): less noise."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
