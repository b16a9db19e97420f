"""Outbox: what durability costs, and how fast a queue drains when the network returns.

Issue 15, figures:

(a) ``submit()`` to durable: wall time per call (committed, WAL fsynced), median
    and quartiles, beside a bare ``sqlite3`` INSERT + COMMIT of the same row with
    the same pragmas (WAL, ``synchronous=FULL``, exclusive locking). Rounds of
    each are interleaved. Target: median <= 2 ms.
(b) replay of 1000 queued POSTs (a small JSON body each) to a loopback
    :class:`~connmgr.testing.FaultServer` running in a child process, once the
    network returns: ``drain()`` from the moment the probe answers again, beside
    plain ``requests`` sending the same 1000 POSTs (with an ``Idempotency-Key``
    each) in a loop on one keep-alive session. The manager has no client-side
    rate limit here (a configured one would pace the replay). Rounds
    interleaved; the figure is the median of the per-round rate ratios.
    Target: >= 80% of plain's rate. The same POSTs sent through the manager in
    a loop are shown too: the outbox's own share is the gap to that.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

from benchmarks._loopback import pinned, server_process
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.outbox import Outbox
from connmgr.ratelimit import OriginRateLimits, RateLimit
from connmgr.testing import ProbeTarget

TITLE = "Outbox: durable submit and replay"

_BODY = {"playlist": 7, "track": 42, "position": 3}
#: No client-side pace, stated explicitly (an app that sets a rate limit gets a
#: replay at that pace): the figure is the outbox's own cost.
_UNLIMITED = RateLimit(max_requests=1_000_000, time_window=1.0)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _quartiles(samples: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(samples, n=4)
    return q1, q2, q3


def _bare_insert(conn: sqlite3.Connection, now: float) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO entries (method, base, ref, headers, params, body, operation, "
        "idempotency_key, state, created_at, expires_at, next_attempt_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
        (
            "POST",
            "http://127.0.0.1:9/",
            "playlists/7/tracks",
            '[["Content-Type", "application/json"]]',
            None,
            json.dumps(_BODY).encode(),
            "default",
            str(uuid.uuid4()),
            now,
            now + 604800.0,
            now,
            now,
        ),
    )
    conn.execute("COMMIT")


def _submit(quick: bool) -> list[str]:
    rounds, n = (3, 40) if quick else (9, 60)
    ours: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as home, ProbeTarget() as internet:
        monitor = NetworkMonitor([TcpProbe("127.0.0.1", internet.port)])
        mgr = ConnectionManager("http://127.0.0.1:9", monitor=monitor, watch_network=False)
        outbox = Outbox(Path(home) / "outbox.db", mgr)
        # The same schema and pragmas, on a connection of our own.
        Outbox(Path(home) / "bare.db", mgr).close()
        conn = sqlite3.connect(Path(home) / "bare.db", isolation_level=None)
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        for _ in range(20):  # warm up
            outbox.submit("POST", "/playlists/7/tracks", json=_BODY)
            _bare_insert(conn, time.time())
        for r in range(rounds):
            order = ("ours", "bare") if r % 2 == 0 else ("bare", "ours")
            for name in order:
                for _ in range(n):
                    started = time.perf_counter()
                    if name == "ours":
                        outbox.submit("POST", "/playlists/7/tracks", json=_BODY)
                        ours.append(time.perf_counter() - started)
                    else:
                        _bare_insert(conn, time.time())
                        bare.append(time.perf_counter() - started)
        conn.close()
        outbox.close()
        mgr.close()
    oq1, om, oq3 = _quartiles(ours)
    bq1, bm, bq3 = _quartiles(bare)
    return [
        f"(a) `submit()` to durable (committed, WAL fsynced), {len(ours)} calls each, "
        f"{rounds} interleaved rounds:",
        "",
        "| | median | quartiles |",
        "|---|---:|---:|",
        f"| `Outbox.submit()` | {om * 1e3:.2f} ms | {oq1 * 1e3:.2f}–{oq3 * 1e3:.2f} ms |",
        f"| bare `sqlite3` INSERT + COMMIT | {bm * 1e3:.2f} ms | "
        f"{bq1 * 1e3:.2f}–{bq3 * 1e3:.2f} ms |",
        "",
        f"submit() median {om * 1e3:.2f} ms (target <= 2 ms): **{_verdict(om <= 0.002)}**; "
        f"{(om - bm) * 1e6:+.0f} µs over the bare insert (validation, JSON, signals).",
    ]


def _replay_outbox(url: str, home: str, count: int, round_no: int) -> tuple[float, float]:
    with ProbeTarget() as internet:
        monitor = NetworkMonitor([TcpProbe("127.0.0.1", internet.port)], offline_interval=0.05)
        mgr = ConnectionManager(
            url,
            monitor=monitor,
            watch_network=False,
            rate_limits=OriginRateLimits(default=_UNLIMITED),
        )
        internet.close()
        monitor.check()  # the network is gone while the user works
        path = Path(home) / f"replay-{round_no}.db"
        outbox = Outbox(path, mgr)
        for _ in range(count):
            outbox.submit("POST", "/ok", json=_BODY)
        internet.reopen()
        started, cpu = time.perf_counter(), time.thread_time()
        monitor.check()  # the network returns
        drained = outbox.drain(timeout=120)  # delivers in this thread
        elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
        if not drained:
            raise RuntimeError(f"the outbox did not drain: {outbox.pending_count} left")
        outbox.close()
        mgr.close()
        os.unlink(path)
    return count / elapsed, cpu / count


def _replay_manager(url: str, count: int) -> tuple[float, float]:
    """The same POSTs sent through a manager in a loop: the share the outbox does not add."""
    with ProbeTarget() as internet:
        monitor = NetworkMonitor([TcpProbe("127.0.0.1", internet.port)])
        mgr = ConnectionManager(
            url,
            monitor=monitor,
            watch_network=False,
            rate_limits=OriginRateLimits(default=_UNLIMITED),
        )
        mgr.post("/ok", json=_BODY)
        keys = [str(uuid.uuid4()) for _ in range(count)]
        started, cpu = time.perf_counter(), time.thread_time()
        for key in keys:
            mgr.post("/ok", json=_BODY, headers={"Idempotency-Key": key})
        elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
        mgr.close()
    return count / elapsed, cpu / count


def _replay_plain(url: str, count: int) -> tuple[float, float]:
    session = requests.Session()
    session.post(url + "/ok", json=_BODY)  # a connection, like the outbox's warm pool
    keys = [str(uuid.uuid4()) for _ in range(count)]
    started, cpu = time.perf_counter(), time.thread_time()
    for key in keys:
        response = session.post(url + "/ok", json=_BODY, headers={"Idempotency-Key": key})
        response.raise_for_status()
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
    session.close()
    return count / elapsed, cpu / count


def _replay(quick: bool) -> list[str]:
    rounds, count = (1, 300) if quick else (5, 1000)
    runs: dict[str, list[tuple[float, float]]] = {"outbox": [], "plain": [], "manager": []}
    ratios: list[float] = []
    with server_process() as url, pinned(), tempfile.TemporaryDirectory() as home:
        for r in range(rounds):
            order = ["outbox", "plain", "manager"]
            if r % 2:
                order.reverse()
            got: dict[str, tuple[float, float]] = {}
            for name in order:
                if name == "outbox":
                    got[name] = _replay_outbox(url, home, count, r)
                elif name == "plain":
                    got[name] = _replay_plain(url, count)
                else:
                    got[name] = _replay_manager(url, count)
                runs[name].append(got[name])
            ratios.append(got["outbox"][0] / got["plain"][0])
    ours = [rate for rate, _ in runs["outbox"]]
    plain = [rate for rate, _ in runs["plain"]]
    managed = [rate for rate, _ in runs["manager"]]
    cpu = {name: statistics.median(c for _, c in values) * 1e6 for name, values in runs.items()}
    ratio = statistics.median(ratios)
    spread = f"{min(ratios):.0%}–{max(ratios):.0%}" if len(ratios) > 1 else "one round"

    def quart(rates: list[float]) -> str:
        if len(rates) < 2:
            return "–"
        q1, _, q3 = _quartiles(rates)
        return f"{q1:.0f}–{q3:.0f}/s"

    return [
        f"(b) replay of {count} queued POSTs after the network returns, {rounds} interleaved "
        "rounds (server in a child process):",
        "",
        "| | median rate | quartiles | client CPU per request (median) |",
        "|---|---:|---:|---:|",
        f"| `Outbox.drain()` | {statistics.median(ours):.0f}/s | {quart(ours)} | "
        f"{cpu['outbox']:.0f} µs |",
        f"| plain `requests` loop | {statistics.median(plain):.0f}/s | {quart(plain)} | "
        f"{cpu['plain']:.0f} µs |",
        f"| `ConnectionManager.post` loop (for reference) | {statistics.median(managed):.0f}/s | "
        f"{quart(managed)} | {cpu['manager']:.0f} µs |",
        "",
        f"outbox / plain: median {ratio:.0%} (rounds {spread}; target >= 80%): "
        f"**{_verdict(ratio >= 0.8)}**.",
    ]


def run(quick: bool = False) -> str:
    """Run both figures; return the Markdown section body."""
    return "\n".join([*_submit(quick), "", *_replay(quick)])


if __name__ == "__main__":
    print(run())
