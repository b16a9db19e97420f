from __future__ import annotations

import threading
import time

from connmgr.clock import CancelToken, SystemClock, interruptible_sleep
from connmgr.testing import FakeClock


def test_cancel_token_wakes_a_system_sleep_quickly():
    token = CancelToken()
    threading.Timer(0.02, token.cancel).start()
    started = time.monotonic()
    assert interruptible_sleep(SystemClock(), 5.0, cancel=token) is True
    assert time.monotonic() - started < 0.5


def test_already_cancelled_token_does_not_wait():
    token = CancelToken()
    token.cancel()
    clock = FakeClock()
    assert interruptible_sleep(clock, 10.0, cancel=token) is True
    assert clock.now() == 1000.0


def test_fake_clock_auto_advances_and_records():
    clock = FakeClock(start=0.0)
    assert clock.sleep(1.5) is False
    assert clock.now() == 1.5
    assert clock.sleeps == [1.5]


def test_fake_clock_manual_mode_blocks_until_advanced():
    clock = FakeClock(start=0.0, auto_advance=False)
    done = threading.Event()

    def sleeper():
        clock.sleep(2.0)
        done.set()

    t = threading.Thread(target=sleeper)
    t.start()
    assert not done.wait(0.05)
    clock.advance(2.0)
    assert done.wait(1.0)
    t.join()


def test_cancel_callbacks_run_once_and_can_be_removed():
    token = CancelToken()
    calls: list[str] = []
    remove = token.add_callback(lambda: calls.append("a"))
    token.add_callback(lambda: calls.append("b"))
    remove()
    token.cancel()
    token.cancel()
    assert calls == ["b"]
