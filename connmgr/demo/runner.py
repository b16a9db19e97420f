"""Run the demo's story: worker threads search through one manager while the script plays.

:func:`run_story` takes a manager, the API's FaultServer and a
``set_network(up)`` callable, and reports every happening as a
:class:`~connmgr.demo.events.DemoEvent` to an ``on_event`` callback (from
worker threads), so the terminal timeline and the Qt demo window run the same
story.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connmgr.demo.events import DemoEvent
from connmgr.demo.report import DemoReport
from connmgr.demo.story import QUERIES, SEARCH_PATH, Chapter, StoryContext, select_chapters
from connmgr.demo.timings import DemoTimings
from connmgr.machine import ConnectionState

if TYPE_CHECKING:
    from connmgr.manager import ConnectionManager
    from connmgr.testing.server import FaultServer

__all__ = ["run_story"]

S = ConnectionState

# A gate answer this fast never touched the network.
_FAIL_FAST = 0.005


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    searches: int = 0
    succeeded: int = 0
    stale: int = 0
    cancelled: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    messages: dict[str, str] = field(default_factory=dict)
    fail_fast_times: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def run_story(
    manager: ConnectionManager,
    server: FaultServer,
    *,
    set_network: Callable[[bool], None],
    chapters: Sequence[str | Chapter] | None = None,
    timings: DemoTimings | None = None,
    workers: int = 4,
    on_event: Callable[[DemoEvent], None] | None = None,
    stop: threading.Event | None = None,
) -> DemoReport:
    """Run the story (or the chosen chapters) and return what happened.

    ``manager`` must send to ``server`` (its ``base_url`` is ``server.url``, or
    the workers search ``server.url_for(SEARCH_PATH)``); ``set_network(False)``
    must make the manager's network monitor fail its probes and the server
    unreachable, ``set_network(True)`` undo that. ``on_event`` receives every
    :class:`DemoEvent`, from the script's and the workers' threads; it must be
    quick and must not raise. Setting ``stop`` ends the story early.

    The workers' searches are cancelled when the story ends, so it returns
    within about a second of its last chapter.
    """
    from connmgr import signals
    from connmgr.clock import CancelToken
    from connmgr.errors import NetworkError, RequestCancelledError
    from connmgr.stale import stale_age

    timings = timings or DemoTimings()
    chosen = select_chapters(chapters)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ValueError(f"workers must be a whole number from 1 to 64, got {workers!r}")
    stop = stop or threading.Event()
    finished = threading.Event()
    started = time.monotonic()
    origin_url = server.url
    events_lock = threading.Lock()
    tally = _Tally()
    current_chapter: list[str] = [""]
    search_url = server.url_for(SEARCH_PATH)
    hits_before = server.hits(SEARCH_PATH)

    def emit(kind: str, text: str, **fields: Any) -> None:
        event = DemoEvent(time.monotonic() - started, kind, text, current_chapter[0], **fields)
        if on_event is not None:
            with events_lock:
                on_event(event)

    ctx = StoryContext(
        manager,
        server,
        set_network=set_network,
        timings=timings,
        emit=emit,
        deadline=started + timings.story_limit,
        stop=stop,
    )
    initial = manager.state_for(origin_url)

    # -- signal receivers (held strongly by the connected_to contexts below) ---------

    def on_state(sender: object, **kw: Any) -> None:
        old, new = kw["old"], kw["new"]
        ctx.record_change(old, new)
        reason = kw.get("reason") or ""
        snapshot = kw.get("snapshot")
        wait = getattr(snapshot, "retry_in", None) if new is S.BACKOFF else None
        text = f"{old.value} → {new.value}: {reason}"
        if wait:
            text += f"; one trial request in {wait:.1f} s"
        emit("state", text, state=new, old=old, wait=wait, key=("cooldown", kw.get("origin")))

    retries_of: Counter[object] = Counter()

    def on_retry(sender: object, **kw: Any) -> None:
        # "retry k/R" counts retries: the first retry of three is 1/3. Counted here per
        # search, so the words do not hang on how the signal numbers its attempts.
        request_id = kw.get("request_id")
        with events_lock:
            retries_of[request_id] += 1
            number = retries_of[request_id]
        most = int(kw.get("max_attempts") or 1) - 1
        delay = float(kw.get("delay") or 0.0)
        emit(
            "retry",
            f"search #{request_id}: {_short_reason(kw.get('error'))}; "
            f"retry {number}/{most} in {delay:.1f} s",
            wait=delay,
            key=request_id,
        )

    def on_finished(sender: object, **kw: Any) -> None:
        with events_lock:
            retries_of.pop(kw.get("request_id"), None)

    def on_rate_limited(sender: object, **kw: Any) -> None:
        wait = float(kw.get("wait") or 0.0)
        if wait > 0:
            emit(
                "rate_limited",
                f"rate limited: searches wait {wait:.1f} s for the server's pause",
                wait=wait,
                key=("rate", kw.get("origin")),
            )

    def on_network(sender: object, **kw: Any) -> None:
        status = kw.get("status")
        label = getattr(status, "label", None) or ("online" if kw.get("online") else "offline")
        emit("network", f"network monitor: {label}")

    # -- workers -----------------------------------------------------------------------

    tokens = [CancelToken() for _ in range(workers)]

    def worker(index: int) -> None:
        rng = random.Random(index)
        token = tokens[index]
        while not finished.is_set():
            query = QUERIES[rng.randrange(len(QUERIES))]
            with tally.lock:
                tally.searches += 1
            began = time.perf_counter()
            try:
                response = manager.get(
                    search_url, params={"q": query}, operation="search", cancel=token,
                    serve_stale=ctx.serve_stale,
                )  # fmt: skip
            except RequestCancelledError:
                with tally.lock:
                    tally.cancelled += 1
            except NetworkError as exc:
                took = time.perf_counter() - began
                name = type(exc).__name__
                fast = took < _FAIL_FAST
                with tally.lock:
                    tally.failed[name] += 1
                    tally.messages.setdefault(name, exc.user_message)
                    if fast:
                        tally.fail_fast_times.append(took)
                if fast:
                    emit(
                        "fail_fast",
                        f"{query!r} failed fast in {took * 1e6:.0f} µs: {exc.user_message}",
                        error=name,
                        elapsed=took,
                    )
                else:
                    emit(
                        "failed",
                        f"{query!r} failed after {took:.1f} s: {exc.user_message}",
                        error=name,
                        elapsed=took,
                    )
            except Exception as exc:  # outside the documented tree: a bug worth showing
                with tally.lock:
                    tally.unexpected.append(f"{type(exc).__name__}: {exc}")
                emit("note", f"unexpected {type(exc).__name__}: {exc}", error=type(exc).__name__)
            else:
                age = stale_age(response)
                with tally.lock:
                    tally.succeeded += 1
                    tally.stale += age is not None
                if age is not None:
                    ctx.count_stale()
                    took = time.perf_counter() - began
                    emit(
                        "stale",
                        f"{query!r} answered from the cache in {_duration(took)}:"
                        f" results saved {age:.1f} s ago",
                        error="stale",
                        elapsed=took,
                    )
            finished.wait(timings.think * rng.uniform(0.5, 1.5))

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"connmgr-demo-worker-{i}", daemon=True)
        for i in range(workers)
    ]
    with contextlib.ExitStack() as stack:
        stack.enter_context(signals.state_changed.connected_to(on_state, sender=manager))
        stack.enter_context(signals.retry_scheduled.connected_to(on_retry, sender=manager))
        stack.enter_context(signals.rate_limited.connected_to(on_rate_limited, sender=manager))
        stack.enter_context(signals.request_finished.connected_to(on_finished, sender=manager))
        monitor = getattr(manager, "monitor", None)
        if monitor is not None:
            stack.enter_context(signals.network_changed.connected_to(on_network, sender=monitor))
        for thread in threads:
            thread.start()
        try:
            for number, chapter in enumerate(chosen, 1):
                if stop.is_set() or time.monotonic() >= ctx.deadline:
                    ctx.missed.append(f"{chapter.name}: not run (the story ran out of time)")
                    break
                current_chapter[0] = ctx.chapter = chapter.name
                emit("chapter", f"{number}/{len(chosen)} {chapter.title}: {chapter.summary}")
                chapter.script(ctx)
        finally:
            current_chapter[0] = ""
            finished.set()
            # Searches still waiting at a gate or for a retry end now, not at their deadline.
            deadline = time.monotonic() + 1.0
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            for token in tokens:
                token.cancel("the demo is over")
            for thread in threads:
                thread.join(2.0)
    elapsed = time.monotonic() - started
    return _report(
        manager,
        server,
        chosen=chosen,
        elapsed=elapsed,
        tally=tally,
        transitions=ctx.changes(),
        initial=initial,
        ctx=ctx,
        hits_before=hits_before,
    )


def _duration(seconds: float) -> str:
    """``"85 µs"`` for an answer at the gate, ``"1.4 s"`` for one after trying."""
    return f"{seconds * 1e6:.0f} µs" if seconds < 0.01 else f"{seconds:.1f} s"


def _short_reason(error: object) -> str:
    """A few words for a retry line: ``"HTTP 503"``, ``"connection refused"``."""
    status = getattr(error, "status", None)
    if status:
        return f"HTTP {status}"
    kind = getattr(error, "kind", None)
    if kind and kind != "error":
        return str(kind).replace("_", " ")
    return type(error).__name__


def _report(
    manager: ConnectionManager,
    server: FaultServer,
    *,
    chosen: Sequence[Chapter],
    elapsed: float,
    tally: _Tally,
    transitions: list[tuple[ConnectionState, ConnectionState]],
    initial: ConnectionState,
    ctx: StoryContext,
    hits_before: int,
) -> DemoReport:
    visited: list[ConnectionState] = [initial]
    for _old, new in transitions:
        if new not in visited:
            visited.append(new)
    attempts = retries = 0
    time_in_state: dict[str, float] = {}
    try:
        stats = manager.stats()
    except Exception:  # the summary falls back to what the demo counted itself
        stats = None
    if stats is not None:
        attempts = int(getattr(stats, "attempts", 0))
        retries = int(getattr(stats, "retries", 0))
        time_in_state = {str(k): float(v) for k, v in dict(stats.time_in_state).items()}
        with contextlib.suppress(Exception):
            # The stats book a stay when it ends; add the one still running.
            snap = manager.snapshot(server.url)
            now = manager.clock.now()
            key = snap.state.value
            time_in_state[key] = time_in_state.get(key, 0.0) + max(0.0, now - snap.since)
    hits = server.hits(SEARCH_PATH) - hits_before
    with tally.lock:
        fast = list(tally.fail_fast_times)
        return DemoReport(
            chapters=tuple(c.name for c in chosen),
            elapsed=elapsed,
            searches=tally.searches,
            succeeded=tally.succeeded,
            stale=tally.stale,
            cancelled=tally.cancelled,
            failed=dict(tally.failed),
            messages=dict(tally.messages),
            fail_fast=len(fast),
            fail_fast_median=statistics.median(fast) if fast else None,
            attempts=attempts or hits,
            retries=retries,
            server_hits=hits,
            transitions=tuple(transitions),
            states_visited=tuple(visited),
            time_in_state=time_in_state,
            missed=tuple(ctx.missed),
            unexpected=tuple(tally.unexpected),
        )
