"""One oversized timeout must not turn off every deadline in the process.

The watchdog thread enforces every total deadline; it must survive any
delay it is handed, restart if it dies anyway, and configs must refuse what
the platform cannot wait (a ``ValueError`` naming the field, never an
``OverflowError`` on some later request).
"""

from __future__ import annotations

import logging
import math
import threading
import time

import pytest
import requests

from connmgr.errors import DeadlineExceededError
from connmgr.testing.server import FaultServer
from connmgr.timeouts import (
    MAX_TIMEOUT,
    AttemptContext,
    Deadline,
    TimeoutConfig,
    TimeoutProfiles,
    timeout_pair,
)
from connmgr.transport import create_session
from connmgr.watchdog import WATCHDOG, Timer

DRIP = "/drip?bytes=100&interval=0.05"


def assert_drip_ends_at(fault_server: FaultServer, total: float) -> None:
    session = create_session(TimeoutConfig(connect=1, read=2, total=total))
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        session.get(fault_server.url_for(DRIP))
    elapsed = time.monotonic() - started
    assert total - 0.01 <= elapsed < total + 0.15, elapsed


@pytest.mark.parametrize(
    "delay",
    [1e10, 10**400, math.inf, math.nan, threading.TIMEOUT_MAX * 2, -5.0],
    ids=["1e10", "10**400", "inf", "nan", "2*TIMEOUT_MAX", "negative"],
)
def test_an_absurd_delay_leaves_the_watchdog_working(
    fault_server: FaultServer, delay: float
) -> None:
    restarts = WATCHDOG.restarts
    absurd = Timer(lambda: None)
    WATCHDOG.schedule(delay, absurd)
    try:
        fired = threading.Event()
        WATCHDOG.schedule(0.02, Timer(fired.set))
        assert fired.wait(2.0)
        assert_drip_ends_at(fault_server, 0.2)
    finally:
        WATCHDOG.cancel(absurd)
    assert WATCHDOG.restarts == restarts
    assert WATCHDOG.thread is not None and WATCHDOG.thread.is_alive()


def test_the_longest_accepted_deadline_leaves_other_deadlines_holding(
    fault_server: FaultServer,
) -> None:
    # The original attack: one request with an enormous total, then a drip.
    session = create_session(TimeoutConfig(connect=1, read=2, total=MAX_TIMEOUT))
    huge = AttemptContext(TimeoutConfig(total=MAX_TIMEOUT), Deadline(MAX_TIMEOUT))
    stream = session.get(
        fault_server.url_for("/stall-body?seconds=3&bytes=10"), stream=True, timeout=huge
    )
    try:
        assert_drip_ends_at(fault_server, 0.2)
    finally:
        stream.close()


def test_a_dead_watchdog_restarts_with_the_next_request_and_says_why(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    warm = threading.Event()
    WATCHDOG.schedule(0.001, Timer(warm.set))
    assert warm.wait(2.0)
    old = WATCHDOG.thread
    assert old is not None
    restarts = WATCHDOG.restarts

    def broken_drain() -> None:
        raise RuntimeError("simulated watchdog bug")

    monkeypatch.setattr(WATCHDOG, "_drain", broken_drain)
    with caplog.at_level(logging.ERROR, logger="connmgr.watchdog"):
        WATCHDOG.schedule(0.001, Timer(lambda: None))
        old.join(2.0)
    assert not old.is_alive()
    monkeypatch.undo()
    assert "connmgr watchdog thread died" in caplog.text
    assert "simulated watchdog bug" in caplog.text
    assert WATCHDOG.restarts == restarts + 1

    # The next request registers, starts a new thread, and its deadline holds.
    assert_drip_ends_at(fault_server, 0.2)
    assert WATCHDOG.thread is not None and WATCHDOG.thread is not old
    assert WATCHDOG.thread.is_alive()


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("field", ["connect", "read", "total"])
@pytest.mark.parametrize(
    "value",
    [1e12, 1e10, MAX_TIMEOUT * 1.5, 10**400, math.inf, math.nan, -1, 0],
    ids=["1e12", "1e10", "1.5*MAX", "10**400", "inf", "nan", "-1", "0"],
)
def test_timeouts_the_platform_cannot_wait_are_refused_naming_the_field(
    field: str, value: float
) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be") as info:
        TimeoutConfig(**{field: value})
    assert not isinstance(info.value, OverflowError)
    assert len(str(info.value)) < 300  # 10**400 is not printed in full
    with pytest.raises(ValueError, match=rf"^profiles\.search\.{field} must be"):
        TimeoutProfiles.from_dict({"search": {field: value}})


def test_huge_values_elsewhere_give_value_errors_too() -> None:
    with pytest.raises(ValueError, match="Deadline total"):
        Deadline(10**400)
    with pytest.raises(ValueError, match="Deadline total"):
        Deadline(1e10)
    with pytest.raises(ValueError, match=r"^connect timeout"):
        timeout_pair((1e12, 1))
    with pytest.raises(ValueError, match=r"^timeout"):
        timeout_pair(10**400)


def test_a_per_call_timeout_too_large_is_a_caller_bug_and_sends_nothing(
    fault_server: FaultServer,
) -> None:
    session = create_session(TimeoutConfig(connect=1, read=2, total=5))
    with pytest.raises(ValueError, match="timeout") as info:
        session.get(fault_server.url_for("/ok"), timeout=1e12)
    assert not isinstance(info.value, requests.RequestException)
    assert fault_server.hits() == 0


def test_the_largest_accepted_timeouts_really_work(fault_server: FaultServer) -> None:
    config = TimeoutConfig(connect=MAX_TIMEOUT, read=MAX_TIMEOUT, total=MAX_TIMEOUT)
    with create_session(config) as session:
        assert session.get(fault_server.url_for("/ok")).content == b"ok"
        assert session.get(fault_server.url_for("/ok"), timeout=MAX_TIMEOUT).status_code == 200


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "64MiB", math.nan])
def test_max_body_bytes_must_be_a_positive_int_or_none(value: object) -> None:
    with pytest.raises(ValueError, match=r"^max_body_bytes must be"):
        TimeoutConfig(max_body_bytes=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^profiles\.quick\.max_body_bytes must be"):
        TimeoutProfiles.from_dict({"quick": {"max_body_bytes": value}})
    assert TimeoutConfig(max_body_bytes=None).max_body_bytes is None
    assert TimeoutConfig(max_body_bytes=10**400).max_body_bytes == 10**400
