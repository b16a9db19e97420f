"""Successful requests to ever more origins do not grow memory without bound.

The failure path (each origin's last error kept) is covered by
test_adversarial_memory.py; this is the success path, over real loopback
sockets on distinct loopback addresses (127.0.x.y: on Linux the whole
127.0.0.0/8 answers locally). Each origin's listener exists only for its one
request, so the test holds a handful of file descriptors at a time.
"""

from __future__ import annotations

import gc
import queue
import socket
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock

CAP = 20  # the table's cap, lowered from 1,024 so that a hundred origins pass it


class OneShotServers:
    """Answers one request on each listener handed to it, then closes it."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

    def __init__(self) -> None:
        self._listeners: queue.Queue[socket.socket | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def origin(self, n: int) -> str:
        """A listener on 127.0.<n // 250>.<n % 250 + 2> for one request; its origin."""
        host = f"127.0.{n // 250}.{n % 250 + 2}"
        listener = socket.create_server((host, 0))
        self._listeners.put(listener)
        return f"http://{host}:{listener.getsockname()[1]}"

    def _serve(self) -> None:
        while (listener := self._listeners.get()) is not None:
            with listener:
                listener.settimeout(5)
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                with conn:
                    conn.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                        data += chunk
                    conn.sendall(self.RESPONSE)

    def close(self) -> None:
        self._listeners.put(None)
        self._thread.join(2)


@pytest.fixture
def servers() -> Iterator[OneShotServers]:
    try:
        socket.create_server(("127.0.0.2", 0)).close()
    except OSError as exc:
        pytest.skip(f"127.0.0.2 is not a local address here: {exc}")
    made = OneShotServers()
    yield made
    made.close()


@pytest.mark.slow
def test_origins_past_the_cap_add_no_memory_on_success(servers, probe_target):
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], clock=clock, os_events=False
    )
    with ConnectionManager(
        monitor=monitor, clock=clock, retry=RetryConfig(max_retries=0), watch_network=False
    ) as mgr:
        mgr._origins.max_origins = CAP
        # The per-origin environment lookups are an LRU too (256 by default): the same cap.
        mgr._environment.max_entries = CAP

        def visit(first: int, count: int) -> None:
            for n in range(first, first + count):
                assert mgr.get(servers.origin(n) + "/x").text == "ok"

        # Traced from the start, so that the origins evicted later were traced when made.
        tracemalloc.start()
        try:
            visit(0, 2 * CAP)  # past the cap: the table is full and evicting
            gc.collect()
            before = tracemalloc.take_snapshot()
            visit(2 * CAP, 3 * CAP)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        # What the test harness itself allocates (pytest, the socket guard's cache) is not
        # the library's: only allocations made in connmgr, requests and urllib3 count.
        library = [
            tracemalloc.Filter(True, f"*/{package}/*")
            for package in ("connmgr", "requests", "urllib3")
        ]
        stats = after.filter_traces(library).compare_to(before.filter_traces(library), "lineno")
        grown = sum(stat.size_diff for stat in stats)
        top = "\n".join(str(stat) for stat in stats[:6])
        assert len(mgr._origins) <= CAP
        assert all(snap.last_error is None for snap in mgr.snapshots().values())
        assert mgr.stats().succeeded == 5 * CAP
    # 60 new origins replaced 60 old ones. What remains is bounded caches (URL
    # checks, urllib's split cache): a few hundred bytes an origin, where each
    # origin kept costs over a kilobyte (and used to cost 26 KB).
    assert grown < 3 * CAP * 512, (
        f"{grown / 1024:.0f} KiB for {3 * CAP} origins past the cap:\n{top}"
    )
