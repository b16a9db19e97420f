"""Priority lanes: interactive before background, FIFO within a lane, no starvation."""

from __future__ import annotations

import pytest
from ratelimit_helpers import START, Waiter, queue_up, serve_in_steps, until

from connmgr.ratelimit import RateLimiter
from connmgr.ratelimit.lanes import BACKGROUND, INTERACTIVE, WaitQueue, lane_of
from connmgr.testing.clock import FakeClock


def one_per_second(max_overtaken: int = 4) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock(START, auto_advance=False)
    limiter = RateLimiter(1, 1.0, burst=1, clock=clock, max_overtaken=max_overtaken)
    assert limiter.acquire()  # the next slot is a second away
    return limiter, clock


def test_interactive_goes_before_queued_background_fifo_within_each_lane() -> None:
    limiter, clock = one_per_second()
    log: list[tuple[str, float]] = []
    background = [
        Waiter(limiter, clock, log=log, priority="background", name=f"b{i}") for i in range(3)
    ]
    interactive = [Waiter(limiter, clock, log=log, name=f"i{i}") for i in range(2)]
    queue_up(limiter, *background, *interactive)
    serve_in_steps(clock, log, steps=5, step=1.0)
    assert [name for name, _ in log] == ["i0", "i1", "b0", "b1", "b2"]
    assert [at for _, at in log] == [1001.0, 1002.0, 1003.0, 1004.0, 1005.0]


def test_an_interactive_request_behind_fifty_background_waits_one_interval() -> None:
    clock = FakeClock(START, auto_advance=False)
    limiter = RateLimiter(10, 1.0, burst=1, clock=clock)
    assert limiter.acquire()
    log: list[tuple[str, float]] = []
    background = [
        Waiter(limiter, clock, log=log, priority="background", name=f"b{i}") for i in range(50)
    ]
    queue_up(limiter, *background)
    search = Waiter(limiter, clock, log=log, name="search")
    queue_up(limiter, search)
    serve_in_steps(clock, log, steps=1, step=0.1)
    assert log == [("search", pytest.approx(1000.1))]
    serve_in_steps(clock, log, steps=50, step=0.1)
    assert [name for name, _ in log[1:]] == [f"b{i}" for i in range(50)]


def test_background_is_never_starved_the_oldest_goes_after_max_overtaken() -> None:
    limiter, clock = one_per_second(max_overtaken=2)
    log: list[tuple[str, float]] = []
    old = Waiter(limiter, clock, log=log, priority="background", name="b0")
    later = [Waiter(limiter, clock, log=log, name=f"i{i}") for i in range(4)]
    queue_up(limiter, old, *later)
    serve_in_steps(clock, log, steps=5, step=1.0)
    # Overtaken twice (i0, i1), b0 goes next whatever its lane; then the rest in order.
    assert [name for name, _ in log] == ["i0", "i1", "b0", "i2", "i3"]


def test_max_overtaken_zero_is_plain_fifo() -> None:
    limiter, clock = one_per_second(max_overtaken=0)
    log: list[tuple[str, float]] = []
    queue_up(
        limiter,
        Waiter(limiter, clock, log=log, priority="background", name="b0"),
        Waiter(limiter, clock, log=log, name="i0"),
        Waiter(limiter, clock, log=log, priority=9, name="p9"),
    )
    serve_in_steps(clock, log, steps=3, step=1.0)
    assert [name for name, _ in log] == ["b0", "i0", "p9"]


def test_integer_lanes_lower_first() -> None:
    limiter, clock = one_per_second()
    log: list[tuple[str, float]] = []
    queue_up(
        limiter,
        Waiter(limiter, clock, log=log, priority=5, name="p5"),
        Waiter(limiter, clock, log=log, priority=2, name="p2"),
        Waiter(limiter, clock, log=log, priority=0, name="p0"),
    )
    serve_in_steps(clock, log, steps=3, step=1.0)
    assert [name for name, _ in log] == ["p0", "p2", "p5"]


def test_a_background_wait_pushed_past_its_timeout_by_interactive_arrivals_gives_up() -> None:
    limiter, clock = one_per_second()
    background = Waiter(limiter, clock, priority="background", timeout=1.5)
    queue_up(limiter, background)  # its slot: 1001, within 1.5 s
    interactive = Waiter(limiter, clock)
    queue_up(limiter, interactive)  # now the background slot is 1002: past its timeout
    until(lambda: background.result is not None)
    assert background.result is False and clock.now() == START
    assert limiter.waiting == 1
    clock.advance(1.0)
    until(lambda: interactive.result is not None)
    assert interactive.result is True


def test_an_up_front_decision_counts_only_the_waiters_ahead_in_the_lanes() -> None:
    limiter, clock = one_per_second()
    queue_up(limiter, *(Waiter(limiter, clock, priority="background") for _ in range(3)))
    # Behind three background waiters an interactive caller is next: its slot is 1 s away.
    assert limiter.wait(timeout=0.5) is False
    assert limiter.waiting == 3
    # A background newcomer would be fourth: 4 s away.
    assert limiter.wait(timeout=3.5, priority="background") is False


@pytest.mark.parametrize(
    ("priority", "error"),
    [
        ("urgent", ValueError),
        (10, ValueError),
        (-1, ValueError),
        (True, TypeError),
        (1.0, TypeError),
    ],
)
def test_bad_priorities_are_refused_naming_the_argument(
    priority: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="priority"):
        RateLimiter().wait(timeout=0, priority=priority)  # type: ignore[arg-type]


def test_lane_names() -> None:
    assert (lane_of("interactive"), lane_of("background")) == (INTERACTIVE, BACKGROUND) == (0, 1)


def test_wait_queue_rejects_a_bad_max_overtaken() -> None:
    with pytest.raises(ValueError, match="max_overtaken"):
        WaitQueue(-1)
    with pytest.raises(TypeError, match="max_overtaken"):
        WaitQueue(2.5)  # type: ignore[arg-type]
