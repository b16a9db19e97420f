"""A signal receiver that raises changes no response and no error.

Every connmgr signal gets a receiver that raises (a plain bug, a requests
exception, even one of connmgr's own errors); the same requests are then made
with and without those receivers, over loopback, on a fake clock, and must
end the same way. Each raising receiver is logged.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable

import pytest
import requests

from connmgr import signals
from connmgr.errors import NetworkError, OfflineError
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.signals import SafeSignal
from connmgr.testing import FakeClock, FaultServer

ALL_SIGNALS: list[SafeSignal] = [
    getattr(signals, name)
    for name in signals.__all__
    if isinstance(getattr(signals, name), SafeSignal)
]
#: Sent by other objects, whose own tests raise in their receivers: outbox_changed by
#: the Outbox (tests/outbox/test_outbox_signals.py), quota_store_* by a shared quota
#: store (tests/quota/test_quota_sqlite.py).
ELSEWHERE = {"outbox_changed", "quota_store_failed", "quota_store_recovered"}
SIGNALS = [signal for signal in ALL_SIGNALS if signal.name not in ELSEWHERE]

RAISES: dict[str, Callable[[], Exception]] = {
    "bug": lambda: ZeroDivisionError("a receiver's own bug"),
    "requests": lambda: requests.ConnectionError("raised by a receiver"),
    "connmgr": lambda: OfflineError("raised by a receiver"),
}


def scenario(probe_port: int) -> list[tuple[object, ...]]:
    """Requests that send every signal; how each one ended, without ports or ids."""
    clock = FakeClock(start=0.0)
    ended: list[tuple[object, ...]] = []
    with FaultServer() as server:
        monitor = NetworkMonitor(
            probes=[TcpProbe("127.0.0.1", probe_port)], clock=clock, os_events=False
        )
        with ConnectionManager(
            monitor=monitor, clock=clock, rng=random.Random(7), watch_network=False
        ) as mgr:
            ended.append(("check", monitor.check()))  # network_changed, epoch_changed
            for path in (
                "/flaky/a?fail=2&status=503",  # retries, degraded, then success
                "/status/429?retry_after=2",  # rate limited, retried, failed
                "/status/404",  # a final answer, not an error
                "/status/500",  # retries exhausted: request_failed
            ):
                try:
                    r = mgr.get(server.url_for(path))
                    ended.append((path, r.status_code, r.text))
                except NetworkError as exc:
                    ended.append((path, type(exc), exc.user_message, exc.attempts))
            ended.append(("state", mgr.state, mgr.stats().attempts))
        ended.append(("hits", tuple(sorted(Counter(r.path for r in server.requests).items()))))
    return ended


def test_every_signal_is_covered_here_or_by_its_own_sender_tests():
    # A new signal must join the scenario below (or name the tests that cover it).
    assert {signal.name for signal in ALL_SIGNALS} - {s.name for s in SIGNALS} == ELSEWHERE


@pytest.mark.parametrize("kind", list(RAISES))
def test_raising_receivers_change_nothing(kind, probe_target, caplog):
    baseline = scenario(probe_target.port)
    calls: Counter[str] = Counter()

    def make_receiver(signal: SafeSignal) -> Callable[..., None]:
        def receiver(sender: object, **kwargs: object) -> None:
            calls[signal.name] += 1
            raise RAISES[kind]()

        return receiver

    receivers = [(signal, make_receiver(signal)) for signal in SIGNALS]
    for signal, receiver in receivers:
        signal.connect(receiver, weak=False)
    try:
        with caplog.at_level(logging.ERROR, logger="connmgr.signals"):
            with_raising = scenario(probe_target.port)
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver)
    assert with_raising == baseline
    # Every signal was really sent (or the test would prove nothing), and every
    # raising receiver was logged, naming its signal.
    assert set(calls) == {signal.name for signal in SIGNALS}, calls
    logged = {record.args[0] for record in caplog.records if record.args}
    assert logged == set(calls)
