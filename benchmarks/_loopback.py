"""Shared loopback set-up for the benchmarks: a FaultServer in its own process, core pinning,
client CPU per request (with the transport's watchdog thread counted on connmgr's side), and
instructions per request counted by valgrind's callgrind.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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


def median_quartiles(values: list[float]) -> tuple[float, float, float]:
    """The median, lower and upper quartile of ``values``."""
    ordered = sorted(values)
    return statistics.median(ordered), ordered[len(ordered) // 4], ordered[3 * len(ordered) // 4]


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


# The client that runs under callgrind: ``python -c _CALLGRIND_CLIENT KIND URL M N``. It
# builds the same clients as the CPU figure. It starts uninstrumented (valgrind runs it
# several times faster so), switches callgrind's instrumentation on after its M-th request
# and calls ``os.getppid()`` (which neither requests nor connmgr calls) right then and after
# its N-th request: ``--dump-before=os_getppid`` makes callgrind write its totals at both
# points, so the second dump counts requests M+1..N and nothing of the start or the exit.
_CALLGRIND_CLIENT = """
import os, subprocess, sys
kind, url, m, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if kind == "requests":
    import requests
    session = requests.Session()
    def get():
        return session.get(url + "/ok", timeout=(5, 30))
    def close():
        session.close()
else:
    import random
    from urllib.parse import urlsplit
    from connmgr.manager import ConnectionManager
    from connmgr.network import NetworkMonitor, TcpProbe
    from connmgr.ratelimit import OriginRateLimits, RateLimit
    parts = urlsplit(url)
    monitor = NetworkMonitor(
        [TcpProbe(parts.hostname, parts.port)], interval=30.0, offline_interval=0.2, timeout=0.3
    )
    mgr = ConnectionManager(
        url,
        rate_limits=OriginRateLimits(default=RateLimit(max_requests=1_000_000, time_window=1.0)),
        monitor=monitor,
        rng=random.Random(11),
    )
    def get():
        return mgr.get("/ok")
    def close():
        mgr.close()
for _ in range(m):
    get()
subprocess.run(
    ["callgrind_control", "-i", "on", str(os.getpid())],
    check=True, stdout=subprocess.DEVNULL, timeout=60,
)
os.getppid()
for _ in range(n - m):
    get()
os.getppid()
close()
"""

#: The kinds of client :func:`callgrind_instructions` can count.
CALLGRIND_KINDS = ("requests", "manager")


def callgrind_unavailable() -> str | None:
    """Why callgrind cannot run here (plain words), or ``None`` when it can."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install valgrind)"
    return None


def callgrind_command(out: Path, kind: str, url: str, counts: tuple[int, int]) -> list[str]:
    """The valgrind command line that counts ``kind``'s requests ``counts[0]+1..counts[1]``."""
    return [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--instr-atstart=no",
        "--dump-instr=no",
        "--collect-jumps=no",
        "--dump-before=os_getppid",
        sys.executable,
        "-c",
        _CALLGRIND_CLIENT,
        kind,
        url,
        str(counts[0]),
        str(counts[1]),
    ]


def callgrind_instructions(
    url: str, counts: tuple[int, int], *, budget: float
) -> dict[str, float] | str:
    """Instructions per request for each of :data:`CALLGRIND_KINDS`, or why not.

    Each client runs once under ``valgrind --tool=callgrind``; its instructions
    between the end of request ``counts[0]`` and the end of request ``counts[1]``
    (all threads), divided by the difference, are its instructions per request:
    the interpreter's start, the imports, the warm-up and the exit are left out.
    Both clients run at once (instruction counts do not depend on how the cores
    are shared); whatever still runs after ``budget`` seconds is killed and the
    figure is reported as not measured.
    """
    reason = callgrind_unavailable()
    if reason is not None:
        return reason
    warm, total = counts
    if not 0 <= warm < total:
        raise ValueError(f"counts must be (M, N) with 0 <= M < N, got {counts}")
    with tempfile.TemporaryDirectory(prefix="connmgr-callgrind-") as folder:
        environ = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts every run
        runs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        for kind in CALLGRIND_KINDS:
            out = Path(folder) / f"{kind}.out"
            runs[kind] = (
                subprocess.Popen(
                    callgrind_command(out, kind, url, counts),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=environ,
                ),
                out,
            )
        deadline = time.monotonic() + budget
        failed = ""
        for kind, (proc, _) in runs.items():
            try:
                code = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                failed = failed or f"not measured: over the {budget:.0f} s budget"
                continue
            if code != 0:
                failed = failed or f"not measured: the {kind} client exited {code}"
        for proc, _ in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if failed:
            return failed
        measured: dict[str, float] = {}
        for kind, (_, out) in runs.items():
            parts = _callgrind_parts(out)
            if len(parts) != 2:
                return f"not measured: {len(parts)} dumps by os.getppid() in the {kind} run, not 2"
            measured[kind] = parts[1] / (total - warm)
    return measured


def _callgrind_parts(out: Path) -> list[int]:
    """The totals of the dumps that ``--dump-before`` wrote, in order."""
    parts: dict[int, int] = {}
    for path in out.parent.glob(out.name + ".*"):
        part, triggered, summary = 0, False, None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("part:"):
                part = int(line.split(":", 1)[1])
            elif line.startswith("desc: Trigger: --dump-before"):
                triggered = True
            elif line.startswith(("summary:", "totals:")) and summary is None:
                summary = int(line.split(":", 1)[1].split()[0])
        if triggered and summary is not None:
            parts[part] = summary
    return [parts[key] for key in sorted(parts)]
