"""Transport: what the deadline costs on the happy path, and how well it holds.

Issue 2, item 8:

(a) client CPU per request (``time.thread_time``) of ``create_session()``
    against a plain ``requests.Session`` on keep-alive loopback, ``GET /ok``
    on a :class:`~connmgr.testing.FaultServer` running in a child process (so
    its threads do not share the client's GIL; with two cores or more, client
    and server are pinned to different cores). Rounds are interleaved
    (order alternating) and the figure is the median of the per-round ratios
    (target <= 1.05x). The watchdog thread's CPU during the run is added to
    connmgr's side. A plain session with ``timeout=(5, 30)`` (what the plan's
    adapter did) is shown too: socket timeouts alone cost a little.
(b) the deadline overrun (elapsed minus ``total``) with
    ``TimeoutConfig(connect=1, read=2, total=0.5)`` on a slow drip, a stall
    before the headers and a stall in the middle of the body, min/median/max
    over 10 runs each (target: median <= 100 ms, aim <= 20 ms); beside plain
    requests with ``timeout=(1, 2)`` on the same fault, run once, on faults
    capped so the bench stays short (the drip lasts 5 s, the stalls 5 s).
Also: how long a cancel takes to end a request stalled mid-body (target
<= 50 ms), and the worst overrun of 20 concurrent stalled requests.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable

import requests

from benchmarks._loopback import cpu_per_request, pinned, server_process
from connmgr.clock import CancelToken
from connmgr.errors import DeadlineExceededError, RequestCancelledError
from connmgr.timeouts import TimeoutConfig
from connmgr.transport import AttemptContext, create_session
from connmgr.watchdog import WATCHDOG

TITLE = "Transport: deadlines and overhead"

TOTAL = 0.5
CONFIG = TimeoutConfig(connect=1, read=2, total=TOTAL)
FAULTS = {
    "slow drip (1 byte / 50 ms)": "/drip?bytes=100&interval=0.05",
    "stall before headers": "/stall-headers?seconds=5",
    "stall mid-body": "/stall-body?seconds=5&bytes=100",
}


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _overhead(url: str, quick: bool) -> list[str]:
    rounds, n = (9, 100) if quick else (41, 100)
    ok_url = url + "/ok"
    plain = requests.Session()
    plain_timeout = requests.Session()
    ours = create_session()
    runners: dict[str, Callable[[], object]] = {
        "plain": lambda: plain.get(ok_url),
        "plain+timeout": lambda: plain_timeout.get(ok_url, timeout=(5, 30)),
        "ours": lambda: ours.get(ok_url),
    }
    for get in runners.values():  # warm up: connections, caches, the watchdog thread
        for _ in range(50):
            get()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    ratios, ratios_timeout = [], []
    for r in range(rounds):
        order = list(runners) if r % 2 == 0 else list(reversed(runners))
        got = {name: cpu_per_request(runners[name], n, watchdog=name == "ours") for name in order}
        for name, value in got.items():
            samples[name].append(value)
        ratios.append(got["ours"] / got["plain"])
        ratios_timeout.append(got["ours"] / got["plain+timeout"])
    median = statistics.median
    ratio = median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    held, cancelled = WATCHDOG.stats()
    plain_us = median(samples["plain"]) * 1e6
    timeout_us = median(samples["plain+timeout"]) * 1e6
    ours_us = median(samples["ours"]) * 1e6
    return [
        "### Client CPU per request (keep-alive loopback, `GET /ok`)",
        "",
        f"{rounds} interleaved rounds of {n} requests per client, order alternating; CPU "
        "from `time.thread_time` (for connmgr, plus the watchdog thread's CPU); the "
        "FaultServer runs in a child process on the other core. The figure is the median "
        "of the per-round ratios.",
        "",
        "| client | CPU per request | vs plain Session |",
        "|---|---:|---:|",
        f"| plain `requests.Session()` (anchor) | {plain_us:.0f} µs | 1.00x |",
        f"| plain Session, `timeout=(5, 30)` (socket timeouts alone) | {timeout_us:.0f} µs "
        f"| {timeout_us / plain_us:.3f}x |",
        f"| `create_session()` (connect/read/total, watchdog) | {ours_us:.0f} µs "
        f"| **{ratio:.3f}x** |",
        "",
        f"Per-round ratios: median {ratio:.3f}x, quartiles {q1:.3f}x-{q3:.3f}x; against the "
        f"plain session with the same socket timeouts: {median(ratios_timeout):.3f}x. "
        f"Target <= 1.05x: **{_verdict(ratio <= 1.05)}**.",
        f"Watchdog after the run: {held} entries held, {cancelled} of them cancelled "
        "(dropped lazily; bounded).",
        "",
    ]


def _timed(fn: Callable[[], object]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        fn()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def _fetch(session: requests.Session, url: str, **kwargs: object) -> None:
    with session.get(url, **kwargs) as response:  # type: ignore[arg-type]
        response.content  # noqa: B018


def _overruns(url: str, quick: bool) -> list[str]:
    runs = 3 if quick else 10
    session = create_session(CONFIG)
    lines = [
        f"### Deadline overrun, `TimeoutConfig(connect=1, read=2, total={TOTAL})`",
        "",
        f"{runs} runs per fault; overrun = elapsed - total. Anchor: plain requests with "
        "`timeout=(1, 2)` on the same fault, once (the drip is capped at 5 s, the stalls at 5 s; "
        "a longer drip would hold plain requests just as long).",
        "",
        "| fault | connmgr overrun min / median / max | error | plain requests `timeout=(1, 2)` "
        "| target (median <= 100 ms, aim <= 20 ms) |",
        "|---|---:|---|---|---|",
    ]
    all_ok = True
    for name, path in FAULTS.items():
        overruns: list[float] = []
        kinds: set[str] = set()
        for _ in range(runs):
            elapsed, exc = _timed(lambda path=path: _fetch(session, url + path))
            overruns.append(elapsed - TOTAL)
            kinds.add(type(exc).__name__ if exc else "no error!")
        anchor_elapsed, anchor_exc = _timed(
            lambda path=path: _fetch(requests.Session(), url + path, timeout=(1, 2))
        )
        anchor = f"{anchor_elapsed:.2f} s, " + (
            type(anchor_exc).__name__ if anchor_exc else "completed"
        )
        med = statistics.median(overruns)
        ok = med <= 0.1 and kinds == {DeadlineExceededError.__name__}
        all_ok &= ok
        lines.append(
            f"| {name} | {min(overruns) * 1e3:.1f} / {med * 1e3:.1f} / "
            f"{max(overruns) * 1e3:.1f} ms | {', '.join(sorted(kinds))} | {anchor} "
            f"| {_verdict(ok)}{' (aim met)' if med <= 0.02 else ''} |"
        )
    lines += ["", f"All stall kinds within target: **{_verdict(all_ok)}**.", ""]
    return lines


def _cancel_and_concurrency(url: str, quick: bool) -> list[str]:
    runs = 3 if quick else 10
    session = create_session(TimeoutConfig(total=10))
    latencies: list[float] = []
    for _ in range(runs):
        token = CancelToken()
        fired: list[float] = []

        def cancel(token: CancelToken = token, fired: list[float] = fired) -> None:
            fired.append(time.monotonic())
            token.cancel()

        timer = threading.Timer(0.1, cancel)
        timer.start()
        _, exc = _timed(
            lambda token=token: _fetch(
                session,
                url + FAULTS["stall mid-body"],
                timeout=AttemptContext.start(TimeoutConfig(total=10), cancel=token),
            )
        )
        ended = time.monotonic()
        timer.join()
        assert isinstance(exc, RequestCancelledError), exc
        latencies.append(ended - fired[0])

    count = 20
    results: list[float] = []
    lock = threading.Lock()

    def worker(total: float) -> None:
        s = create_session(TimeoutConfig(connect=1, read=2, total=total))
        elapsed, _ = _timed(lambda: _fetch(s, url + FAULTS["stall mid-body"]))
        with lock:
            results.append(elapsed - total)

    threads = [threading.Thread(target=worker, args=(0.2 + 0.3 * i / count,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    med = statistics.median(latencies)
    worst = max(results)
    return [
        "### Cancellation and many deadlines at once",
        "",
        "| measurement | min / median / max | target |",
        "|---|---:|---|",
        f"| `CancelToken.cancel()` to `RequestCancelledError`, stalled mid-body ({runs} runs) "
        f"| {min(latencies) * 1e3:.1f} / {med * 1e3:.1f} / {max(latencies) * 1e3:.1f} ms "
        f"| <= 50 ms: **{_verdict(max(latencies) <= 0.05)}** |",
        f"| overrun of {count} concurrent stalled requests, totals 0.2-0.5 s, one watchdog thread "
        f"| {min(results) * 1e3:.1f} / {statistics.median(results) * 1e3:.1f} / "
        f"{worst * 1e3:.1f} ms | <= 100 ms: **{_verdict(worst <= 0.1)}** |",
        "",
    ]


def run(quick: bool) -> str:
    """Measure and return the Markdown section."""
    with server_process() as url, pinned():
        lines = _overhead(url, quick)
        lines += _overruns(url, quick)
        lines += _cancel_and_concurrency(url, quick)
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
