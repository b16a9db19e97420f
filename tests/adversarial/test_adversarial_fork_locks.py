"""A forked child can use connmgr even when the parent's threads held its locks.

``os.fork()`` copies the forking thread only; a lock another thread held at
that moment stays held in the child for ever. Each test makes a parent
thread hold every lock connmgr owns while the main thread forks, and then
checks that the child finishes its work and exits 0 within 5 s. The parent
never waits longer: a hung child is killed and the test fails.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from connmgr import forksafe
from connmgr.clock import CancelToken
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, NetworkStatus, TcpProbe
from connmgr.network.default import _DEFAULT
from connmgr.ratelimit import RateLimiter
from connmgr.retry import RetryConfig

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")

CHILD_LIMIT = 5.0


def wait_child(pid: int, limit: float = CHILD_LIMIT) -> int | None:
    """The child's exit code, or ``None`` (after killing it) if it ran past ``limit``."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def fork_and_run(child: Callable[[], bool]) -> int | None:
    """Fork; the child runs ``child`` and exits 0 if it returned True (never returns to pytest)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = 0 if child() else 2
        except BaseException as exc:
            print(f"child failed: {exc!r}", file=sys.stderr)
        finally:
            os._exit(code)
    return wait_child(pid)


@contextlib.contextmanager
def held_by_another_thread(locks: list[threading.Lock]) -> Iterator[None]:
    """A thread takes every lock and keeps them until the block ends."""
    taken = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with contextlib.ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(2), "the holder thread could not take the locks"
    try:
        yield
    finally:
        release.set()
        thread.join(2)


def manager_locks(mgr: ConnectionManager, origin: str) -> list[threading.Lock]:
    entry = mgr._origins.get(origin)
    assert entry is not None
    return [
        mgr._totals._lock,
        mgr._environment._lock,
        mgr._origins._lock,
        mgr._waits._lock,
        mgr._retry_now._lock,
        mgr.retry_budget._lock,
        mgr.rate_limits._lock,
        entry.limiter._lock,
        entry.limiter._bucket._lock,
        mgr.monitor._lock,
        mgr.monitor._sleep._lock,
        _DEFAULT._lock,
    ]


def test_the_child_sends_although_a_parent_thread_held_every_lock(fault_server, probe_target):
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", probe_target.port)], os_events=False)
    url = fault_server.url_for("/status/200")
    with ConnectionManager(monitor=monitor, retry=RetryConfig(max_retries=0)) as mgr:
        assert mgr.get(url).status_code == 200  # the origin, its limiter, a warm pool
        origin = url.split("/status")[0]

        def child() -> bool:
            return mgr.get(url).status_code == 200 and mgr.stats().succeeded == 2

        with held_by_another_thread(manager_locks(mgr, origin)):
            code = fork_and_run(child)
    assert code == 0, "the child hung on a lock its parent's thread held" if code is None else code
    assert fault_server.hits("/status/200") == 2


@pytest.mark.slow
def test_a_limiter_waiter_of_the_parent_does_not_block_the_child():
    # A parent thread queued in the limiter: in the child its place at the head
    # would never be taken, and every later caller would queue behind it.
    limiter = RateLimiter(1, 0.5)
    assert limiter.acquire()
    token = CancelToken()
    queued = threading.Thread(
        target=limiter.wait, kwargs={"timeout": 5.0, "cancel": token}, daemon=True
    )
    queued.start()
    end = time.monotonic() + 0.3
    while not limiter._queue and time.monotonic() < end:
        time.sleep(0.001)
    assert limiter._queue, "the waiter never queued"

    def child() -> bool:
        started = time.monotonic()
        # The next slot is at most 0.5 s away once nobody stands ahead.
        return limiter.wait(timeout=2.0) and time.monotonic() - started < 1.0

    code = fork_and_run(child)
    token.cancel()
    queued.join(2)
    assert code == 0


def test_a_child_starts_its_own_watcher_and_gets_a_status(probe_target):
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], interval=0.5, offline_interval=0.1
    )
    monitor.start()
    try:
        assert monitor.running
        assert monitor.check() is NetworkStatus.ONLINE

        def child() -> bool:
            if monitor.running:  # the parent's watcher thread does not exist here
                return False
            monitor.start()
            ok = monitor.running and monitor.is_online(force_check=True)
            monitor.stop()
            return ok

        with held_by_another_thread([monitor._lock]):
            code = fork_and_run(child)
    finally:
        monitor.stop()
    assert code == 0


def test_registration_holds_objects_weakly():
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", 9)], os_events=False)
    before = forksafe.registered()
    managers = [ConnectionManager(monitor=monitor, watch_network=False) for _ in range(3)]
    during = forksafe.registered()
    for manager in managers:
        manager.close()
    del managers, manager
    gc.collect()
    assert during > before
    assert forksafe.registered() <= before
