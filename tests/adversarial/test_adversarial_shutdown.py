"""An interpreter exit never waits on a connmgr retry delay.

Python joins non-daemon threads before ``atexit`` handlers run: a worker in a
20 s retry wait held the exit for 20 s. The child process here starts such a
worker, its main thread returns as soon as the worker waits, and the whole
process must be gone within 2 s, the worker ending with RequestCancelledError.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    from connmgr import ConnectionManager, RequestCancelledError
    from connmgr.network import NetworkMonitor, TcpProbe

    url, probe_port = sys.argv[1], int(sys.argv[2])
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", probe_port)], os_events=False)
    mgr = ConnectionManager(monitor=monitor, watch_network=False)

    def work():
        try:
            mgr.get(url)
            print("worker: no error", flush=True)
        except RequestCancelledError as exc:
            print("worker: cancelled:", exc, flush=True)
        except Exception as exc:
            print("worker: other", type(exc).__name__, flush=True)

    worker = threading.Thread(target=work)  # not a daemon: Python joins it at exit
    worker.start()
    end = time.monotonic() + 5
    while mgr._waits.count == 0 and time.monotonic() < end:
        time.sleep(0.005)
    print("main: worker waits" if mgr._waits.count else "main: worker never waited", flush=True)
    """
)


@pytest.mark.slow
def test_exit_cancels_a_twenty_second_retry_wait(fault_server, probe_target):
    url = fault_server.url_for("/status/503?retry_after=20")
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, url, str(probe_target.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        waiting_since = time.monotonic()
        assert first == "main: worker waits", first + proc.stderr.read()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail("the exit still waits on the 20 s retry delay after 5 s")
        took = time.monotonic() - waiting_since
        rest = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < 2.0, f"the exit waited {took:.1f} s on the retry delay"
    assert "worker: cancelled: the interpreter is shutting down" in rest, rest
    assert proc.returncode == 0
    assert fault_server.hits("/status/503") == 1  # cancelled, never retried
