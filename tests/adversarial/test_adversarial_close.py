"""close() ends what is under way; a closed manager sends nothing; cancel_all() keeps it open.

Real clock and real threads: the point is how soon a 20 s wait ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from connmgr import ManagerClosedError
from connmgr.errors import RateLimitError, RequestCancelledError
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.retry import RetryConfig

pytestmark = pytest.mark.slow


class Worker:
    """One request in a thread; its outcome (response or exception) and when it ended."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.outcome: object = None
        self.ended = 0.0
        self._call = call
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.outcome = self._call()
        except BaseException as exc:
            self.outcome = exc
        self.ended = time.monotonic()


def make_manager(probe_target, retry: RetryConfig | None = None) -> ConnectionManager:
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", probe_target.port)], os_events=False)
    return ConnectionManager(monitor=monitor, retry=retry, watch_network=False)


def wait_for(condition: Callable[[], bool], limit: float = 3.0) -> None:
    end = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < end, "timed out waiting for the condition"
        time.sleep(0.002)


def test_close_ends_a_twenty_second_retry_wait_within_a_fifth_of_a_second(
    fault_server, probe_target
):
    mgr = make_manager(probe_target)
    worker = Worker(lambda: mgr.get(fault_server.url_for("/status/503?retry_after=20")))
    wait_for(lambda: mgr._waits.count == 1)
    closed_at = time.monotonic()
    mgr.close()
    worker.thread.join(2)
    assert isinstance(worker.outcome, RequestCancelledError), worker.outcome
    assert worker.ended - closed_at < 0.2, f"{worker.ended - closed_at:.3f} s after close()"
    assert fault_server.hits("/status/503") == 1


def test_close_ends_a_wait_at_the_rate_limit_gate(fault_server, probe_target):
    mgr = make_manager(probe_target, RetryConfig(max_retries=0))
    with pytest.raises(RateLimitError):  # a 429 asking for 20 s: the origin is now paused
        mgr.get(fault_server.url_for("/status/429?retry_after=20"))
    worker = Worker(lambda: mgr.get(fault_server.url_for("/status/200")))
    wait_for(lambda: mgr._waits.count == 1)
    closed_at = time.monotonic()
    mgr.close()
    worker.thread.join(2)
    assert isinstance(worker.outcome, RequestCancelledError), worker.outcome
    assert worker.ended - closed_at < 0.2
    assert fault_server.hits("/status/200") == 0


def test_a_request_after_close_is_refused_before_anything_is_sent(fault_server, probe_target):
    mgr = make_manager(probe_target)
    assert mgr.get(fault_server.url_for("/status/200")).status_code == 200
    mgr.close()
    mgr.close()  # idempotent
    for method in ("get", "post", "head"):
        with pytest.raises(ManagerClosedError) as info:
            getattr(mgr, method)(fault_server.url_for("/status/200"))
        assert isinstance(info.value, RuntimeError)
        assert "closed" in str(info.value)
    assert fault_server.hits("/status/200") == 1


def test_cancel_all_ends_the_waits_but_the_manager_stays_usable(fault_server, probe_target):
    mgr = make_manager(probe_target)
    workers = [
        Worker(lambda: mgr.get(fault_server.url_for("/status/503?retry_after=20")))
        for _ in range(3)
    ]
    wait_for(lambda: mgr._waits.count == 3)
    cancelled_at = time.monotonic()
    assert mgr.cancel_all("the user pressed Stop") == 3
    for worker in workers:
        worker.thread.join(2)
        assert isinstance(worker.outcome, RequestCancelledError), worker.outcome
        assert "the user pressed Stop" in str(worker.outcome)
        assert worker.ended - cancelled_at < 0.2
    assert not mgr.closed
    # The server's 20 s pause still holds for its origin; another origin goes at once.
    healthy = fault_server.url_for("/status/200").replace("127.0.0.1", "localhost")
    assert mgr.get(healthy).status_code == 200
    mgr.close()
