"""After ``os.fork()``, parent and child never read each other's responses.

Both inherit the same pooled keep-alive socket; if both used it, each would
read answers meant for the other. The child must drop the pools (closing
only its own copies of the descriptors) and open its own connections, and
must not hang on a pool lock another parent thread held at the fork.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable

import pytest
import requests

from connmgr import transport
from connmgr.testing.server import FaultServer
from connmgr.timeouts import TimeoutConfig
from connmgr.transport import TimeoutHTTPAdapter, create_session

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CONFIG = TimeoutConfig(connect=2, read=5, total=10)
ROUNDS = 8


def own_answers(session: requests.Session, url: str, marker: str) -> int:
    """How many of ``ROUNDS`` GETs came back with this process's own marker."""
    good = 0
    for n in range(ROUNDS):
        echoed = session.get(url, params={"pid": marker, "n": str(n)}).json()["args"]
        good += echoed == {"pid": marker, "n": str(n)}
    return good


def in_child(work: Callable[[], int]) -> tuple[int, Callable[[], int]]:
    """Fork; the child runs ``work`` and reports its result through a pipe.

    Returns the child's pid and a function that waits (at most 20 s) for the
    child's number; -1 if it crashed, hung, or exited without one.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, str(work()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)

    def result() -> int:
        try:
            ready, _, _ = select.select([read_end], [], [], 20.0)
            data = os.read(read_end, 64) if ready else b""
        finally:
            os.close(read_end)
            if not data:
                os.kill(pid, 9)
            os.waitpid(pid, 0)
        return int(data) if data else -1

    return pid, result


def test_parent_and_child_each_get_only_their_own_responses(fault_server: FaultServer) -> None:
    url = fault_server.url_for("/echo")
    session = create_session(CONFIG)
    assert own_answers(session, url, "warm-up") == ROUNDS  # one warm keep-alive connection
    warm_clients = {request.client for request in fault_server.requests}
    assert len(warm_clients) == 1

    _, child_result = in_child(lambda: own_answers(session, url, f"child-{os.getpid()}"))
    parent_good = own_answers(session, url, f"parent-{os.getpid()}")
    child_good = child_result()

    assert (parent_good, child_good) == (ROUNDS, ROUNDS)
    clients = {request.client for request in fault_server.requests}
    assert len(clients) == 2  # the parent kept its connection; the child opened one
    children = [r for r in fault_server.requests if r.params.get("pid", "").startswith("child-")]
    assert len(children) == ROUNDS and all(r.client not in warm_clients for r in children)


def test_the_child_does_not_hang_on_a_pool_lock_held_at_the_fork(
    fault_server: FaultServer,
) -> None:
    url = fault_server.url_for("/echo")
    session = create_session(CONFIG)
    assert own_answers(session, url, "warm-up") == ROUNDS
    adapter = session.get_adapter(url)
    assert isinstance(adapter, TimeoutHTTPAdapter)
    holding, release = threading.Event(), threading.Event()

    def hold_the_pool_locks() -> None:
        # Another parent thread inside urllib3's pool code at the moment of the fork.
        with adapter.poolmanager.pools.lock:
            holding.set()
            release.wait(20.0)

    holder = threading.Thread(target=hold_the_pool_locks, daemon=True)
    holder.start()
    assert holding.wait(5.0)
    try:
        _, child_result = in_child(lambda: own_answers(session, url, f"child-{os.getpid()}"))
    finally:
        release.set()
        holder.join(5.0)
    assert child_result() == ROUNDS
    assert own_answers(session, url, "parent") == ROUNDS


def test_a_pool_that_cannot_be_emptied_is_replaced_unclosed(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # If emptying the inherited pools fails, the child must still never touch
    # them: the adapter gets a fresh pool manager and the old one is dropped.
    url = fault_server.url_for("/echo")
    session = create_session(CONFIG)
    assert own_answers(session, url, "warm-up") == ROUNDS
    warm_clients = {request.client for request in fault_server.requests}

    def cannot_empty(manager: object) -> None:
        raise RuntimeError("simulated: the pools cannot be emptied")

    monkeypatch.setattr(transport, "_drop_pools", cannot_empty)
    _, child_result = in_child(lambda: own_answers(session, url, f"child-{os.getpid()}"))
    assert child_result() == ROUNDS  # the parent waits: no race decides this test
    children = [r for r in fault_server.requests if r.params.get("pid", "").startswith("child-")]
    assert len(children) == ROUNDS
    assert all(r.client not in warm_clients for r in children)  # a connection of its own
    assert own_answers(session, url, "parent") == ROUNDS
