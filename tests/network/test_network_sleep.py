"""SleepDetector: a resume from sleep, seen by two clocks (injected: no real sleeping)."""

from __future__ import annotations

import math
import threading
import time

import pytest

from connmgr.network import SleepDetector


class Clocks:
    def __init__(self) -> None:
        self.mono = 100.0
        self.awake = 100.0


def detector_for(clocks: Clocks, **kwargs: float) -> SleepDetector:
    return SleepDetector(monotonic=lambda: clocks.mono, awake_clock=lambda: clocks.awake, **kwargs)


def test_a_sleep_is_the_gap_between_the_clocks_reported_once():
    clocks = Clocks()
    detector = detector_for(clocks)
    clocks.mono += 50.0
    clocks.awake += 50.0
    assert detector.check() == 0.0  # both ran: awake
    clocks.awake += 3600.0
    assert detector.check() == 3600.0
    assert detector.check() == 0.0


def test_noise_below_the_threshold_never_adds_up():
    clocks = Clocks()
    detector = detector_for(clocks, threshold=1.0)
    for _ in range(100):
        clocks.awake += 0.5  # drift between checks, far more than 1 s in total
        assert detector.check() == 0.0


def test_a_clock_set_back_reports_nothing_and_moves_the_baseline():
    clocks = Clocks()
    detector = detector_for(clocks, threshold=5.0)
    clocks.awake -= 7200.0  # the wall clock was set back two hours
    assert detector.check() == 0.0
    clocks.awake += 10.0
    assert detector.check() == 10.0  # measured from the new baseline


def test_concurrent_checks_report_one_sleep_once():
    clocks = Clocks()
    detector = detector_for(clocks)
    clocks.awake += 600.0
    found: list[float] = []
    threads = [threading.Thread(target=lambda: found.append(detector.check())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(found) == [0.0] * 7 + [600.0]


def test_the_system_clocks_see_no_sleep_right_now():
    detector = SleepDetector()
    assert detector.source == ("boottime" if hasattr(time, "CLOCK_BOOTTIME") else "wall clock")
    assert detector.check() == 0.0
    assert "SleepDetector(source=" in repr(detector)


@pytest.mark.parametrize("threshold", [0, -1, math.nan, math.inf, True, "1"])
def test_a_bad_threshold_names_the_field(threshold):
    with pytest.raises(ValueError, match=r"SleepDetector\.threshold"):
        SleepDetector(threshold=threshold)  # type: ignore[arg-type]


def test_clocks_must_be_callables():
    with pytest.raises(TypeError, match="monotonic"):
        SleepDetector(monotonic=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="awake_clock"):
        SleepDetector(awake_clock="boottime")  # type: ignore[arg-type]
