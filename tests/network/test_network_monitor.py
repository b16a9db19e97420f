"""NetworkMonitor: cache, rounds, hints, watcher and events, on loopback and the fake clock."""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
import timeit

import pytest
from network_helpers import (
    OFFLINE,
    ONLINE,
    PORTAL,
    UNKNOWN,
    CountingProbe,
    RaisingProbe,
    ScriptedProbe,
    monitor_for,
    wait_for,
)

from connmgr import signals
from connmgr.clock import CancelToken, SystemClock
from connmgr.network import (
    DEFAULT_PROBES,
    HttpProbe,
    NetworkMonitor,
    NetworkStatus,
    ProbeFailure,
    ProbeResult,
    TcpProbe,
    decide_status,
)
from connmgr.testing import FakeClock

# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": True}, "interval"),
        ({"interval": math.nan}, "interval"),
        ({"offline_interval": -1}, "offline_interval"),
        ({"offline_interval": 60.0}, "offline_interval"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "3"}, "timeout"),
        ({"debounce": -0.1}, "debounce"),
        ({"portal_grace": math.inf}, "portal_grace"),
        ({"probes": []}, "probes"),
        ({"probes": ["8.8.8.8"]}, "probes"),
        ({"clock": object()}, "clock"),
    ],
)
def test_monitor_validation_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=f"NetworkMonitor.{message}"):
        NetworkMonitor(**{"probes": [ScriptedProbe()], **kwargs})


def test_default_probes_and_repr():
    monitor = NetworkMonitor()  # never probed here: the defaults reach the internet
    assert monitor.probes == DEFAULT_PROBES
    assert monitor.status is UNKNOWN
    assert monitor.last_checked is None and monitor.last_results == ()
    assert "tcp 8.8.8.8:443" in repr(monitor)


# --------------------------------------------------------------------------- caching


def test_first_call_probes_then_50_cached_calls_send_no_probe(listener):
    probe = CountingProbe(TcpProbe("127.0.0.1", listener.port))
    clock = FakeClock()
    monitor = monitor_for(probe, clock=clock, interval=30.0)
    assert monitor.status is UNKNOWN
    assert monitor.is_online() is True
    assert probe.calls == 1
    assert wait_for(lambda: listener.accepted == 1)
    for _ in range(50):
        assert monitor.is_online() is True
    clock.advance(29.9)
    assert monitor.is_online() is True
    assert probe.calls == 1
    assert listener.accepted == 1
    clock.advance(0.1)
    assert monitor.is_online() is True
    assert probe.calls == 2
    assert monitor.last_checked == clock.now()


def test_force_check_probes_even_when_cached(listener):
    probe = CountingProbe(TcpProbe("127.0.0.1", listener.port))
    monitor = monitor_for(probe)
    monitor.is_online()
    monitor.is_online(force_check=True)
    assert probe.calls == 2


def test_offline_reprobes_fast_then_backs_off_toward_interval(closed_port):
    probe = CountingProbe(TcpProbe("127.0.0.1", closed_port))
    clock = FakeClock(start=0.0)
    monitor = monitor_for(probe, clock=clock, interval=10.0, offline_interval=1.0)
    probe_times = []
    for _ in range(240):  # 60 s of fake time in steps that add up exactly
        before = probe.calls
        assert monitor.is_online() is False
        if probe.calls > before:
            probe_times.append(clock.now())
        clock.advance(0.25)
    gaps = [b - a for a, b in itertools.pairwise(probe_times)]
    # Six checks at the fast pace (a short drop is noticed within 1 s), then back off.
    assert gaps[:10] == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert set(gaps[9:]) == {10.0}
    assert monitor.status is OFFLINE


def test_online_again_resets_the_offline_backoff():
    probe = ScriptedProbe(OFFLINE, OFFLINE, ONLINE, OFFLINE)
    clock = FakeClock(start=0.0)
    monitor = monitor_for(probe, clock=clock, interval=10.0, offline_interval=1.0)
    assert monitor.is_online() is False  # valid 1 s
    clock.advance(1.0)
    assert monitor.is_online() is False  # valid 2 s
    clock.advance(2.0)
    assert monitor.is_online() is True  # valid 10 s
    clock.advance(10.0)
    assert monitor.is_online() is False  # back to 1 s, not 4 s
    clock.advance(0.99)
    monitor.is_online()
    assert probe.calls == 4
    clock.advance(0.01)
    monitor.is_online()
    assert probe.calls == 5


def test_concurrent_callers_share_one_probe():
    gate = threading.Event()
    probe = ScriptedProbe(ONLINE, gate=gate)
    monitor = monitor_for(probe)
    answers: list[bool] = []

    def ask() -> None:
        answers.append(monitor.is_online(force_check=True))

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for t in threads:
        t.start()
    assert probe.entered.wait(1.0)
    assert wait_for(lambda: _waiters(monitor) == 10)
    gate.set()
    for t in threads:
        t.join(2.0)
    assert answers == [True] * 10
    assert probe.calls == 1


def _waiters(monitor: NetworkMonitor) -> int:
    current = monitor._round
    return 0 if current is None else current.waiters


def test_a_probe_that_raises_counts_as_offline(caplog):
    monitor = monitor_for(RaisingProbe(), ScriptedProbe(OFFLINE))
    with caplog.at_level(logging.ERROR, logger="connmgr.network"):
        assert monitor.is_online() is False
    assert monitor.last_results[0].detail == "the probe raised RuntimeError"
    assert "probe raises raised" in caplog.text


# ----------------------------------------------------------------------- first conclusive answer


def test_a_blackholed_probe_does_not_slow_a_live_one(blackholed_port, listener):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", blackholed_port),
        TcpProbe("127.0.0.1", listener.port),
        timeout=1.0,
        clock=SystemClock(),
    )
    started = time.perf_counter()
    assert monitor.is_online() is True
    assert time.perf_counter() - started < 0.2  # the blackholed probe would take 1 s
    dead, live = monitor.last_results
    assert live.status is ONLINE
    assert dead.status is UNKNOWN and dead.detail == "still running at the verdict"


def test_offline_needs_every_probe_to_fail(blackholed_port, closed_port):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", blackholed_port),
        TcpProbe("127.0.0.1", closed_port),
        timeout=0.15,
        clock=SystemClock(),
    )
    started = time.perf_counter()
    assert monitor.is_online() is False
    took = time.perf_counter() - started
    assert 0.14 <= took < 0.5  # the refused probe alone is not enough: wait for the other
    assert [r.detail for r in monitor.last_results] == [
        "no answer within 0.15 s",
        "connection refused",
    ]


def test_diagnose_runs_every_probe_to_the_end(blackholed_port, listener):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", blackholed_port), TcpProbe("127.0.0.1", listener.port), timeout=0.1
    )
    results = monitor.diagnose()
    assert [r.status for r in results] == [OFFLINE, ONLINE]
    assert decide_status(results) is ONLINE
    assert monitor.status is UNKNOWN  # diagnostics change nothing


# --------------------------------------------------------------------------- events


def test_network_changed_fires_only_on_change(listener, events):
    clock = FakeClock()
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port), clock=clock, interval=10.0, offline_interval=1.0
    )
    with signals.network_changed.connected_to(events, sender=monitor):
        assert monitor.is_online() is True
        assert events.seen == [(True, ONLINE)]
        monitor.is_online(force_check=True)
        assert len(events.seen) == 1
        listener.close()
        clock.advance(10.0)
        assert monitor.is_online() is False
        assert events.seen[-1] == (False, OFFLINE)
        clock.advance(1.0)
        monitor.is_online()
        assert len(events.seen) == 2
        listener.reopen()
        clock.advance(2.0)
        assert monitor.is_online() is True
        assert events.seen == [(True, ONLINE), (False, OFFLINE), (True, ONLINE)]


def test_receivers_run_outside_the_lock_and_their_errors_are_contained(listener, caplog):
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port))
    inside: list[object] = []

    def reenter(sender: object, **kwargs: object) -> None:
        # Would deadlock if the monitor held its lock while sending.
        inside.append(monitor.is_online())
        monitor.report_success()
        inside.append(monitor.status)
        raise RuntimeError("receiver bug")

    later: list[bool] = []

    def other(sender: object, *, online: bool, **kwargs: object) -> None:
        later.append(online)
        raise RuntimeError("another receiver bug")

    with (
        signals.network_changed.connected_to(reenter, sender=monitor),
        signals.network_changed.connected_to(other, sender=monitor),
        caplog.at_level(logging.ERROR, logger="connmgr.network"),
    ):
        assert monitor.is_online() is True
    assert inside == [True, ONLINE]
    # Both raise, so whichever runs first, the other still got the event.
    assert later == [True]
    assert "a network_changed receiver raised" in caplog.text


# --------------------------------------------------------------------------- request-path hints


def test_report_failure_reprobes_unless_debounced(listener):
    probe = CountingProbe(TcpProbe("127.0.0.1", listener.port))
    clock = FakeClock()
    monitor = monitor_for(probe, clock=clock, debounce=1.0)
    assert monitor.is_online() is True
    assert monitor.report_failure(ConnectionError("refused")) is ONLINE
    assert probe.calls == 1  # debounced: a probe just ran
    clock.advance(0.5)
    listener.close()
    assert monitor.report_failure(ConnectionError("refused")) is ONLINE
    assert probe.calls == 1
    # A failure shortens the "online" cache to the debounce window.
    clock.advance(0.5)
    assert monitor.is_online() is False
    assert probe.calls == 2
    clock.advance(1.0)
    assert monitor.report_failure(None) is OFFLINE
    assert probe.calls == 3


def test_report_failure_without_debounce_always_probes(closed_port):
    probe = CountingProbe(TcpProbe("127.0.0.1", closed_port))
    monitor = monitor_for(probe, debounce=0.0)
    for n in range(1, 4):
        assert monitor.report_failure(OSError("x")) is OFFLINE
        assert probe.calls == n


def test_report_success_proves_connectivity_without_a_probe(closed_port, events):
    probe = CountingProbe(TcpProbe("127.0.0.1", closed_port))
    clock = FakeClock()
    monitor = monitor_for(probe, clock=clock, interval=30.0, offline_interval=1.0)
    assert monitor.is_online() is False
    monitor.report_success()
    assert monitor.status is ONLINE
    assert events.seen[-1] == (True, ONLINE)
    clock.advance(29.0)
    assert monitor.is_online() is True
    monitor.report_success()  # traffic keeps the cache fresh
    clock.advance(29.0)
    assert monitor.is_online() is True
    assert probe.calls == 1
    assert len(events.seen) == 2


def test_report_success_during_a_probe_beats_its_offline_verdict():
    gate = threading.Event()
    probe = ScriptedProbe(OFFLINE, gate=gate)
    monitor = monitor_for(probe)
    answer: list[bool] = []
    asker = threading.Thread(target=lambda: answer.append(monitor.is_online()))
    asker.start()
    assert probe.entered.wait(1.0)
    monitor.report_success()
    gate.set()
    asker.join(2.0)
    assert answer == [True]
    assert monitor.status is ONLINE


def test_a_success_before_a_round_does_not_override_it(listener):
    # The clock does not move: only the order of events tells before from during.
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port), clock=FakeClock())
    assert monitor.is_online() is True
    monitor.report_success()
    listener.close()
    assert monitor.is_online(force_check=True) is False
    assert monitor.status is OFFLINE


def test_plain_http_success_behind_a_portal_proves_nothing():
    probe = ScriptedProbe(PORTAL, ONLINE, portal=True)
    clock = FakeClock()
    monitor = monitor_for(probe, clock=clock)
    assert monitor.is_online() is False
    assert monitor.status is PORTAL
    monitor.report_success(url="http://api.example.com/search")
    assert monitor.status is PORTAL
    assert monitor.is_online() is True  # ...but it made the next check probe again
    assert probe.calls == 2
    monitor2 = monitor_for(ScriptedProbe(PORTAL, portal=True))
    monitor2.is_online()
    monitor2.report_success(url="https://api.example.com/search")
    assert monitor2.status is ONLINE


# ----------------------------------------------------------------------- waiting for the network


def test_wait_until_online_reprobes_at_offline_pace():
    probe = ScriptedProbe(OFFLINE, OFFLINE, OFFLINE, ONLINE)
    clock = FakeClock(start=0.0)
    monitor = monitor_for(probe, clock=clock, interval=30.0, offline_interval=0.5)
    assert monitor.wait_until_online(10.0) is True
    assert probe.calls == 4
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_wait_until_online_gives_up_at_its_timeout(closed_port):
    probe = CountingProbe(TcpProbe("127.0.0.1", closed_port))
    clock = FakeClock(start=0.0)
    monitor = monitor_for(probe, clock=clock, offline_interval=0.5)
    assert monitor.wait_until_online(2.0) is False
    assert clock.now() == 2.0
    assert probe.calls == 5  # at 0, 0.5, 1, 1.5, 2
    assert monitor.wait_until_online(0.0) is False


def test_wait_until_online_ends_on_cancel_within_50_ms(closed_port):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", closed_port), clock=SystemClock(), offline_interval=5.0
    )
    token = CancelToken()
    threading.Timer(0.05, token.cancel).start()
    started = time.perf_counter()
    assert monitor.wait_until_online(10.0, cancel=token) is False
    assert time.perf_counter() - started < 0.05 + 0.05


def test_wait_until_online_wakes_on_report_success(closed_port):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", closed_port), clock=SystemClock(), offline_interval=5.0
    )
    threading.Timer(0.05, monitor.report_success).start()
    started = time.perf_counter()
    assert monitor.wait_until_online(10.0) is True
    assert time.perf_counter() - started < 0.05 + 0.05


# --------------------------------------------------------------------------- the watcher


def test_watcher_sends_events_when_the_target_goes_and_returns(listener, events):
    clock = FakeClock(auto_advance=False)
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port), clock=clock, interval=10.0, offline_interval=1.0
    )
    with signals.network_changed.connected_to(events, sender=monitor):
        monitor.start()
        try:
            assert events.wait_count(1)
            assert events.seen == [(True, ONLINE)]
            listener.close()
            clock.advance(9.9)
            assert not events.wait_count(2, timeout=0.05)  # still cached
            clock.advance(0.1)
            assert events.wait_count(2)
            assert events.seen[-1] == (False, OFFLINE)
            listener.reopen()
            clock.advance(1.0)
            assert events.wait_count(3)
            assert events.seen[-1] == (True, ONLINE)
        finally:
            monitor.stop()
    assert not monitor.running


def test_stop_returns_within_100_ms_even_mid_probe(blackholed_port):
    monitor = monitor_for(TcpProbe("127.0.0.1", blackholed_port), clock=SystemClock(), timeout=2.0)
    monitor.start()
    thread = monitor._watcher.thread
    assert wait_for(lambda: monitor._round is not None)  # the watcher waits on a 2 s probe
    started = time.perf_counter()
    monitor.stop()
    assert time.perf_counter() - started < 0.1
    assert not thread.is_alive()
    monitor.stop()  # idempotent


def test_stop_returns_within_100_ms_while_sleeping(listener):
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port), clock=SystemClock())
    monitor.start()
    monitor.start()  # idempotent
    assert wait_for(lambda: monitor.status is ONLINE)
    thread = monitor._watcher.thread
    started = time.perf_counter()
    monitor.stop()
    assert time.perf_counter() - started < 0.1
    assert not thread.is_alive()


def test_watcher_paces_itself_even_on_a_self_advancing_clock(closed_port):
    probe = CountingProbe(TcpProbe("127.0.0.1", closed_port))
    monitor = monitor_for(probe, clock=FakeClock(), offline_interval=0.001, interval=0.001)
    monitor.start()
    threading.Event().wait(0.1)
    monitor.stop()
    assert 1 <= probe.calls <= 15  # at most one round per 10 ms of real time


def test_request_recheck_wakes_the_watcher(listener, events):
    clock = FakeClock(auto_advance=False)
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port), clock=clock, interval=30.0)
    with signals.network_changed.connected_to(events, sender=monitor):
        monitor.start()
        try:
            assert events.wait_count(1)
            listener.close()
            monitor.hint_changed("test")  # no clock movement: only the hint can cause this
            assert events.wait_count(2)
            assert events.seen[-1] == (False, OFFLINE)
        finally:
            monitor.stop()


def test_request_recheck_without_watcher_probes_in_the_background(listener, events):
    clock = FakeClock()
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port), clock=clock, interval=30.0)
    with signals.network_changed.connected_to(events, sender=monitor):
        assert monitor.is_online() is True
        listener.close()
        monitor.request_recheck()  # returns at once; the event follows from a probe thread
        assert events.wait_count(2)
        assert events.seen[-1] == (False, OFFLINE)
        assert monitor.is_online() is False


def test_recheck_during_a_round_is_followed_by_another_round():
    gate = threading.Event()
    probe = ScriptedProbe(ONLINE, OFFLINE, gate=gate)
    monitor = monitor_for(probe)
    asker = threading.Thread(target=monitor.is_online)
    asker.start()
    assert probe.entered.wait(1.0)
    monitor.request_recheck()  # the change may have come after this round started
    gate.set()
    asker.join(2.0)
    assert wait_for(lambda: monitor.status is OFFLINE)
    assert probe.calls == 2


def test_check_specific_host_blackholed_respects_timeout(blackholed_port):
    monitor = monitor_for(ScriptedProbe())
    started = time.perf_counter()
    assert monitor.check_specific_host("127.0.0.1", blackholed_port, timeout=0.1) is False
    assert time.perf_counter() - started < 0.5
    with pytest.raises(ValueError, match="timeout"):
        monitor.check_specific_host("127.0.0.1", 80, timeout=0)


# --------------------------------------------------------------------------- HTTP in the monitor


def test_portal_beats_a_tcp_success(server, listener, events):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port),
        HttpProbe(server.url_for("/portal")),
    )
    with signals.network_changed.connected_to(events, sender=monitor):
        assert monitor.is_online() is False
    assert monitor.status is PORTAL
    assert events.seen == [(False, PORTAL)]
    tcp, http = monitor.last_results
    assert (tcp.status, http.status) == (ONLINE, PORTAL)


def test_a_tcp_success_with_a_dead_http_probe_is_limited_after_the_timeout(
    listener, blackholed_port
):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port),
        HttpProbe(f"http://127.0.0.1:{blackholed_port}/generate_204"),
        timeout=0.3,
        clock=SystemClock(),
    )
    started = time.perf_counter()
    assert monitor.is_online() is False
    assert 0.3 <= time.perf_counter() - started < 1.0  # waited for the HTTP check
    assert monitor.status is NetworkStatus.LIMITED
    assert monitor.last_results[1].failure is ProbeFailure.TIMEOUT


def test_a_blackholed_http_probe_does_not_slow_a_live_one(server, blackholed_port):
    monitor = monitor_for(
        HttpProbe(f"http://127.0.0.1:{blackholed_port}/generate_204"),
        HttpProbe(server.url_for("/generate_204")),
        timeout=1.0,
        clock=SystemClock(),
    )
    started = time.perf_counter()
    assert monitor.is_online() is True
    assert time.perf_counter() - started < 0.2


def test_events_as_a_portal_appears_and_the_user_signs_in(server, events):
    clock = FakeClock()
    # A generous probe timeout: on a loaded machine a 0.5 s one can make the portal's
    # answer look like no answer (offline), which is not what this test is about.
    monitor = monitor_for(
        HttpProbe(server.url_for("/generate_204")),
        clock=clock, interval=10.0, offline_interval=1.0, timeout=3.0,
    )  # fmt: skip
    with signals.network_changed.connected_to(events, sender=monitor):
        assert monitor.is_online() is True
        server.alias("/generate_204", "/portal")  # the hotel's login page intercepts
        clock.advance(10.0)
        assert monitor.is_online() is False
        server.alias("/generate_204", "/redirect?to=/portal")
        clock.advance(1.0)
        assert monitor.is_online() is False  # still a portal: no event
        server.alias("/generate_204", None)  # signed in
        clock.advance(2.0)
        assert monitor.is_online() is True
    assert events.seen == [(True, ONLINE), (False, PORTAL), (True, ONLINE)]


def test_events_as_the_http_target_stops_and_starts(server, events):
    clock = FakeClock()
    monitor = monitor_for(HttpProbe(server.url_for("/generate_204")), clock=clock, interval=5.0)
    with signals.network_changed.connected_to(events, sender=monitor):
        assert monitor.is_online() is True
        server.stop()
        assert monitor.report_failure(ConnectionError("refused")) is ONLINE  # debounced
        clock.advance(1.0)
        assert monitor.report_failure(ConnectionError("refused")) is OFFLINE
        assert monitor.last_results[0].detail == "connection refused"
        server.start()
        clock.advance(5.0)
        assert monitor.is_online() is True
    assert events.statuses() == [ONLINE, OFFLINE, ONLINE]


def test_a_watcher_that_died_can_be_started_again(listener, monkeypatch, caplog):
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port), clock=SystemClock())

    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(monitor, "_check", broken)
    with caplog.at_level(logging.ERROR, logger="connmgr.network"):
        monitor.start()
        assert wait_for(lambda: not monitor.running)
    assert "network watcher failed" in caplog.text
    monkeypatch.undo()
    monitor.start()
    assert monitor.running
    assert wait_for(lambda: monitor.status is ONLINE)
    monitor.stop()


class MalformedProbe:
    """A third-party probe with a bug: its answer names another object, or is no result."""

    detects_portal = False

    def __init__(self, answer: object, name: str = "malformed") -> None:
        self.answer = answer
        self.name = name

    def check(self, timeout: float) -> object:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (None, "the probe returned NoneType, not a ProbeResult"),
        ("online", "the probe returned str, not a ProbeResult"),
        (ProbeResult("x", NetworkStatus.UNKNOWN, 0.0), "the probe answered"),
    ],
)
def test_a_malformed_probe_answer_counts_as_a_failure(answer, detail):
    monitor = monitor_for(MalformedProbe(answer))
    assert monitor.check() is NetworkStatus.OFFLINE
    assert monitor.last_results[0].detail.startswith(detail)
    assert monitor.diagnose()[0].detail.startswith(detail)


def test_a_result_naming_another_object_is_read_as_this_probes(listener):
    wrong = MalformedProbe(ProbeResult("someone else", NetworkStatus.ONLINE, 0.0, "fine"))
    monitor = monitor_for(wrong)
    assert monitor.check() is NetworkStatus.ONLINE
    assert monitor.last_results[0].probe is wrong


def test_a_cached_is_online_takes_at_most_5_microseconds(listener):
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port), clock=SystemClock())
    assert monitor.is_online() is True
    n = 20000
    best = min(timeit.repeat(monitor.is_online, number=n, repeat=7)) / n
    assert best <= 5e-6, f"{best * 1e6:.2f} µs per cached call"
