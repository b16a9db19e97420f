"""The request loop's own figures: no throttle by default, close() that ends waits, bounded
memory, and a stale answer while offline."""

from __future__ import annotations

import random
import socket
import statistics
import subprocess
import sys
import threading
import time

import requests

from benchmarks._loopback import pinned, server_process
from connmgr.errors import RequestCancelledError
from connmgr.machine import MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.retry import RetryConfig
from connmgr.testing import FaultServer, ProbeTarget

TITLE = "The request loop: default rate, close(), memory, stale answers"


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        v = values[0]
        return v, v, v
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _monitor(target: ProbeTarget) -> NetworkMonitor:
    return NetworkMonitor(probes=[TcpProbe("127.0.0.1", target.port)], timeout=1.0)


def _bench_default_rate(url: str, target: ProbeTarget, quick: bool) -> str:
    """200 sequential GETs, default manager vs a plain Session, interleaved rounds."""
    rounds = 3 if quick else 11
    ratios: list[float] = []
    with requests.Session() as plain, ConnectionManager(url, monitor=_monitor(target)) as mgr:
        plain.get(url + "/ok")
        mgr.get("/ok")
        for i in range(rounds):
            times: dict[str, float] = {}
            order = ("plain", "manager") if i % 2 == 0 else ("manager", "plain")
            for who in order:
                started = time.perf_counter()
                for _ in range(200):
                    if who == "plain":
                        plain.get(url + "/ok", timeout=(5, 30))
                    else:
                        mgr.get("/ok")
                times[who] = time.perf_counter() - started
            ratios.append(times["manager"] / times["plain"])
    q1, med, q3 = _quartiles(ratios)
    return (
        "| figure | median | quartiles | target | verdict |\n|---|---:|---:|---:|---|\n"
        f"| 200 sequential GETs, default manager / plain `requests.Session` (wall time, "
        f"{rounds} interleaved rounds) | {med:.3f}x | {q1:.3f}–{q3:.3f}x | ≤ 1.2x | "
        f"{_verdict(med <= 1.2)} |\n"
    )


def _bench_close(quick: bool) -> str:
    """close() to the end of a call waiting 20 s to retry."""
    runs = 3 if quick else 11
    latencies: list[float] = []
    with FaultServer() as server, ProbeTarget() as target:
        for _ in range(runs):
            mgr = ConnectionManager(
                server.url, monitor=_monitor(target), policy=MachinePolicy(max_wait=60),
                retry=RetryConfig(max_retries=1, base_delay=20.0, jitter_range=0.0),
            )  # fmt: skip
            ended: list[float] = []
            waiting = threading.Event()

            def worker(mgr: ConnectionManager = mgr, ended: list[float] = ended) -> None:
                try:
                    mgr.get("/status/503")
                except RequestCancelledError:
                    ended.append(time.perf_counter())

            thread = threading.Thread(target=worker)
            thread.start()
            while mgr._waits.count == 0 and thread.is_alive():  # the worker is in its retry wait
                waiting.wait(0.005)
            closed_at = time.perf_counter()
            mgr.close()
            thread.join(5)
            if ended:
                latencies.append(ended[0] - closed_at)
    q1, med, q3 = _quartiles([x * 1000 for x in latencies] or [float("inf")])
    return (
        f"| `close()` → the waiting call raises RequestCancelledError ({runs} runs) | "
        f"{med:.2f} ms | {q1:.2f}–{q3:.2f} ms | ≤ 100 ms | {_verdict(med <= 100)} |\n"
    )


_MEMORY_CHILD = r"""
import gc, socket, sys
from connmgr.errors import NetworkError
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.retry import RetryConfig
from connmgr.testing import ProbeTarget

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

ports = set()
while len(ports) < 1000:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ports.add(s.getsockname()[1])
with ProbeTarget() as target:
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", target.port)], timeout=1.0,
                             debounce=60.0)
    with ConnectionManager(monitor=monitor, retry=RetryConfig(max_retries=0),
                           watch_network=False) as mgr:
        for port in list(ports)[:50]:        # warm up every code path first
            try:
                mgr.get(f"http://127.0.0.1:{port}/x")
            except NetworkError:
                pass
        gc.collect()
        before = rss()
        for host in range(2, 12):
            for port in ports:
                try:
                    mgr.get(f"http://127.0.0.{host}:{port}/x")
                except NetworkError:
                    pass
        gc.collect()
        print(rss() - before, len(mgr.snapshots()))
"""


def _bench_memory(quick: bool) -> str:
    """RSS growth over 10,000 distinct origins (each refused: the failure path, the heavier)."""
    if quick or not sys.platform.startswith("linux"):
        return "| RSS growth for 10,000 distinct origins | skipped (quick run or not Linux) | |\n"
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    grown, kept = (int(x) for x in out.stdout.split())
    mb = grown / 1e6
    return (
        f"| RSS growth for 10,000 distinct origins (refused connections; {kept} origins "
        f"kept) | {mb:.1f} MB | one run | ≤ 20 MB | {_verdict(mb <= 20)} |\n"
    )


def _bench_stale(quick: bool) -> str:
    """A stale answer while offline: the gate refuses, the cache answers, no socket."""
    try:
        import requests_cache
    except ImportError:
        return "| stale answer while offline | skipped (requests-cache not installed) | |\n"
    with FaultServer() as server, ProbeTarget() as target:
        monitor = _monitor(target)
        session = requests_cache.CachedSession(backend="memory", expire_after=60)
        with ConnectionManager(
            server.url, session=session, monitor=monitor, serve_stale=True,
            rng=random.Random(1),
        ) as mgr:  # fmt: skip
            mgr.get("/echo?q=house")
            server.stop()
            target.close()
            monitor.check()
            runs = 50 if quick else 500
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                assert mgr.get("/echo?q=house").from_cache
                times.append((time.perf_counter() - started) * 1000)
            hits = server.hits()
    q1, med, q3 = _quartiles(times)
    return (
        f"| stale answer while offline ({runs} calls; the server saw {hits} request in all) | "
        f"{med:.3f} ms | {q1:.3f}–{q3:.3f} ms | ≤ 1 ms | {_verdict(med <= 1.0)} |\n"
    )


def run(quick: bool) -> str:
    """The section: each figure with its median, quartiles, target and verdict."""
    with server_process() as url, ProbeTarget() as target, pinned():
        default_rate = _bench_default_rate(url, target, quick)
    rows = _bench_close(quick) + _bench_memory(quick) + _bench_stale(quick)
    socket.setdefaulttimeout(None)
    return (
        default_rate
        + "\n| figure | median | quartiles | target | verdict |\n|---|---:|---:|---:|---|\n"
        + rows
        + "\nThe server runs in a child process pinned to the other core for the first "
        "figure; the others run in-process (no throughput is measured there)."
    )
