"""Network epochs: status changes, OS hints and resumes each start one; hints supersede rounds."""

from __future__ import annotations

import threading

import pytest
from network_helpers import (
    OFFLINE,
    ONLINE,
    CountingProbe,
    ScriptedProbe,
    monitor_for,
    wait_for,
)

from connmgr import signals
from connmgr.network import NO_LINK, EpochCause, SleepDetector, TcpProbe
from connmgr.testing import FakeClock


class FakePair:
    """A monotonic clock and a clock that keeps counting while the machine sleeps."""

    def __init__(self) -> None:
        self.mono = 500.0
        self.boot = 500.0

    def sleep(self, seconds: float) -> None:
        self.boot += seconds  # monotonic stood still

    def run(self, seconds: float) -> None:
        self.mono += seconds
        self.boot += seconds

    def detector(self) -> SleepDetector:
        return SleepDetector(monotonic=lambda: self.mono, awake_clock=lambda: self.boot)


def test_every_status_change_starts_an_epoch_and_says_so_first(listener, recorder):
    clock = FakeClock()
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port), clock=clock, offline_interval=1.0)
    assert monitor.epoch == 0 and monitor.reason == "not checked yet"
    assert monitor.check() is ONLINE
    listener.close()
    assert monitor.check() is OFFLINE
    assert monitor.check() is OFFLINE  # no change: no epoch
    assert monitor.epoch == 2
    assert [(kind, kw["epoch"]) for kind, kw in recorder.seen] == [
        ("epoch", 1),
        ("status", 1),
        ("epoch", 2),
        ("status", 2),
    ]
    first_epoch = recorder.of("epoch")[0]
    assert first_epoch["cause"] is EpochCause.STATUS
    assert first_epoch["status"] is ONLINE and first_epoch["slept"] == 0.0
    assert first_epoch["reason"].startswith("unknown -> online: ")


def test_an_os_hint_starts_an_epoch_without_a_status_change(listener, recorder):
    probe = CountingProbe(TcpProbe("127.0.0.1", listener.port))
    monitor = monitor_for(probe)
    monitor.check()
    calls = probe.calls
    monitor.hint_changed("netlink: address added on eth0")
    assert monitor.epoch == 2
    hint = recorder.of("epoch")[-1]
    assert hint == {
        "epoch": 2,
        "cause": EpochCause.OS_EVENT,
        "reason": "netlink: address added on eth0",
        "slept": 0.0,
        "status": ONLINE,
    }
    assert wait_for(lambda: probe.calls == calls + 1)  # re-probed at once, in the background
    assert [c["status"] for c in recorder.of("status")] == [ONLINE]


def test_no_link_is_offline_at_once_without_probing(listener, recorder):
    probe = CountingProbe(TcpProbe("127.0.0.1", listener.port))
    monitor = monitor_for(probe)
    recorder.sender = monitor
    monitor.check()
    calls = probe.calls
    monitor.hint_changed("netlink: link eth0 down", links_up=False)
    assert (monitor.status, monitor.reason) == (OFFLINE, NO_LINK)
    assert monitor.is_online() is False  # from the cache: the OS said so
    assert probe.calls == calls
    kinds = [(kind, kw.get("cause"), kw["epoch"]) for kind, kw in recorder.seen[2:]]
    # seen[:2]: this monitor's first verdict (an epoch and its status)
    assert kinds == [
        ("epoch", EpochCause.OS_EVENT, 2),
        ("epoch", EpochCause.STATUS, 3),
        ("status", None, 3),
    ]
    assert recorder.of("status")[-1]["reason"] == NO_LINK


def test_a_hint_supersedes_a_round_that_started_before_it(listener):
    # The first round hangs (it started on the old network); the hint starts a new
    # one at once and the caller that waited follows it instead of the stale one.
    gate = threading.Event()
    old = ScriptedProbe(OFFLINE, ONLINE, gate=gate)
    monitor = monitor_for(old, timeout=5.0)
    answer: list[bool] = []
    caller = threading.Thread(target=lambda: answer.append(monitor.is_online()))
    caller.start()
    assert old.entered.wait(2.0)
    old.gate = None  # the next call answers at once
    monitor.hint_changed("netlink: link wlan0 up")
    caller.join(2.0)
    assert answer == [True]
    assert monitor.status is ONLINE
    gate.set()  # the stale round ends now: its OFFLINE is dropped
    assert not wait_for(lambda: monitor.status is not ONLINE, timeout=0.2)


def test_a_storm_of_hints_cannot_hold_a_caller(listener):
    gate = threading.Event()
    probe = ScriptedProbe(OFFLINE, gate=gate)
    monitor = monitor_for(probe, timeout=5.0)
    done = threading.Event()
    threading.Thread(target=lambda: (monitor.is_online(), done.set()), daemon=True).start()
    assert probe.entered.wait(2.0)
    for n in range(10):
        monitor.hint_changed(f"storm {n}")
    assert done.wait(2.0)
    gate.set()


def test_hint_arguments_are_checked():
    monitor = monitor_for(ScriptedProbe())
    with pytest.raises(TypeError, match="source"):
        monitor.hint_changed(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="links_up"):
        monitor.hint_changed("x", links_up="no")  # type: ignore[arg-type]
    assert monitor.epoch == 0


def test_a_receiver_that_raises_does_not_stop_the_epoch(listener, caplog, recorder):
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port))

    def broken(sender: object, **kwargs: object) -> None:
        raise RuntimeError("receiver bug")

    with signals.network_epoch_changed.connected_to(broken, sender=monitor):
        assert monitor.check() is ONLINE
    assert monitor.epoch == 1
    assert "a network_epoch_changed receiver raised" in caplog.text
    assert [c["status"] for c in recorder.of("status")] == [ONLINE]


# --------------------------------------------------------------------------- suspend


def test_check_sleep_starts_an_epoch_reports_the_time_and_reprobes(listener, recorder):
    pair = FakePair()
    probe = CountingProbe(TcpProbe("127.0.0.1", listener.port))
    monitor = monitor_for(probe, sleep_detector=pair.detector())
    monitor.check()
    calls = probe.calls
    pair.run(10.0)
    assert monitor.check_sleep() == 0.0
    pair.sleep(3600.0)
    assert monitor.check_sleep() == pytest.approx(3600.0)
    assert monitor.check_sleep() == 0.0  # each sleep counts once
    assert monitor.last_sleep == pytest.approx(3600.0)
    resume = recorder.of("epoch")[-1]
    assert resume["cause"] is EpochCause.RESUME
    assert resume["slept"] == pytest.approx(3600.0)
    assert resume["reason"] == "resumed after sleeping 3600 s"
    assert monitor.epoch == 2
    assert wait_for(lambda: probe.calls == calls + 1)


def test_the_watcher_notices_a_resume_on_its_own(listener, recorder):
    pair = FakePair()
    clock = FakeClock(auto_advance=False)
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port),
        clock=clock,
        interval=30.0,
        sleep_detector=pair.detector(),
    )
    monitor.start()
    try:
        assert wait_for(lambda: monitor.status is ONLINE)
        pair.sleep(120.0)
        # The watcher waits on the monotonic clock, in steps of at most 5 s.
        assert wait_for(lambda: clock.sleeps and clock.sleeps[-1] <= 5.0)
        clock.advance(5.0)
        assert recorder.wait_for(
            lambda r: any(e["cause"] is EpochCause.RESUME for e in r.of("epoch"))
        )
    finally:
        monitor.stop()
    assert monitor.last_sleep == pytest.approx(120.0)


def test_monitor_arguments_are_checked():
    with pytest.raises(TypeError, match="os_events"):
        monitor_for(ScriptedProbe(), os_events="yes")
    with pytest.raises(TypeError, match="sleep_detector"):
        monitor_for(ScriptedProbe(), sleep_detector=object())
    with pytest.warns(DeprecationWarning, match="portal_grace"):
        monitor_for(ScriptedProbe(), portal_grace=0.3)


def test_a_caller_on_a_superseded_round_takes_the_no_link_verdict_without_probing(listener):
    gate = threading.Event()
    probe = ScriptedProbe(ONLINE, gate=gate)
    monitor = monitor_for(probe, timeout=5.0)
    answer: list[bool] = []
    caller = threading.Thread(target=lambda: answer.append(monitor.is_online()))
    caller.start()
    assert probe.entered.wait(2.0)
    monitor.hint_changed("netlink: link eth0 down", links_up=False)
    caller.join(2.0)
    assert answer == [False]
    assert probe.calls == 1  # the OS's word was enough: no second round
    gate.set()
