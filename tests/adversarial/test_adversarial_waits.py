"""No wait anywhere can overflow: the clock clamps, the policies refuse what no thread can wait."""

from __future__ import annotations

import pytest

from connmgr.machine import MachinePolicy


@pytest.mark.parametrize("seconds", [float("inf"), 1e300, float("nan")])
def test_the_system_clock_never_overflows_a_wait(seconds):
    import threading

    from connmgr.clock import SystemClock

    woken = threading.Event()
    woken.set()
    assert SystemClock().sleep(seconds, woken) is True


@pytest.mark.parametrize("value", [1e300, 10**400, float("inf")])
@pytest.mark.parametrize("field", ["max_wait", "cooldown_max", "max_retry_after"])
def test_a_policy_no_thread_can_wait_is_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"MachinePolicy.{field}"):
        MachinePolicy(
            **{field: value, "cooldown_max": 60.0} if field != "cooldown_max" else {field: value}
        )
