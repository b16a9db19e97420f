"""The scripted demo: worker threads search a misbehaving store API through one manager.

``connmgr demo`` starts a loopback :class:`~connmgr.testing.FaultServer` as "the
store API" and a second one as "the internet" (what the network monitor
probes), then runs several worker threads that search the API through **one**
:class:`~connmgr.ConnectionManager` while a script puts the world through the
story of a bad day:

1. ``healthy`` — every search is answered;
2. ``flaky`` — 30% of answers are 503: retries hide them, the origin turns
   *degraded*, then *online* again once the server heals;
3. ``outage`` — every answer is 503: the circuit opens (*backoff*), the
   cooldown passes, the trial fails and the cooldown doubles; the server comes
   back, the next trial succeeds (*degraded*), then *online*;
4. ``rate-limit`` — 429 with ``Retry-After``: *rate_limited*, searches wait at
   the gate until the pause is over, then it is fine again;
5. ``network`` — the network is lost (the probe fails, the API refuses):
   *offline*, searches fail fast without touching the network; the network
   comes back and so does *online*.

The story is data (:data:`CHAPTERS`) and runs apart from any printing:
:func:`run_story` takes a manager, the API's FaultServer and a
``set_network(up)`` callable, and reports every happening as a
:class:`DemoEvent` to an ``on_event`` callback (from worker threads), so the
Qt demo window can run the same story. :class:`TimelinePrinter` is the terminal
view; :func:`run_cli` is ``connmgr demo``.

Example::

    with DemoWorld(timings=DemoTimings.fast()) as world:
        report = run_story(world.manager, world.api, set_network=world.set_network,
                           timings=world.timings, on_event=print)
    report.states_visited      # (online, degraded, backoff, rate_limited, offline)
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connmgr.machine import ConnectionState, MachinePolicy

if TYPE_CHECKING:
    from connmgr.cli import Terminal
    from connmgr.manager import ConnectionManager
    from connmgr.network import NetworkMonitor
    from connmgr.retry import RetryConfig
    from connmgr.testing.server import FaultServer
    from connmgr.timeouts import TimeoutProfiles

__all__ = [
    "CHAPTERS",
    "Chapter",
    "DemoEvent",
    "DemoReport",
    "DemoTimings",
    "DemoWorld",
    "TimelinePrinter",
    "chapter_names",
    "run_cli",
    "run_story",
]

S = ConnectionState

#: What the workers search for: the DJ-library tool this was built for.
QUERIES: tuple[str, ...] = (
    "deep house 124 bpm",
    "aphex twin",
    "boards of canada",
    "disco edits",
    "amapiano",
    "detroit techno",
    "italo disco",
    "drum and bass 174",
)

#: The API path the workers search (an alias on the FaultServer).
SEARCH_PATH = "/api/search"

# A gate answer this fast never touched the network.
_FAIL_FAST = 0.005


# --------------------------------------------------------------------------- timings


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoTimings:
    """Every duration of the story, in seconds: brisk for people, shorter for tests.

    The demo shortens connmgr's defaults so the story fits in about 20 s; the
    header of ``connmgr demo`` says so. :meth:`fast` is about three times faster
    (for tests and ``--fast``).

    Attributes:
        think: a worker's pause between two searches (±50 %).
        hold: how long a calm chapter (healthy, fine) runs.
        flaky_hold: how long the flaky server stays flaky.
        retry_base / retry_max: :class:`~connmgr.retry.RetryConfig` ``base_delay`` /
            ``max_delay`` (defaults 0.5 / 10).
        cooldown_base: :class:`~connmgr.machine.MachinePolicy` ``cooldown_base`` (default 2).
        max_wait: ``MachinePolicy.max_wait``, the longest wait at a gate (default 30).
        retry_after: the ``Retry-After`` the rate-limited server sends.
        offline_hold: how long the network stays lost once the manager is offline.
        offline_interval: how often the monitor re-probes while offline (default 5).
        step_limit: the longest the script waits for an expected state before it
            moves on (and reports the miss).
        story_limit: the whole story never runs longer than this.
        rate: the client's own limit, requests per second per origin (default 10).
    """

    think: float = 0.25
    hold: float = 2.0
    flaky_hold: float = 4.0
    retry_base: float = 0.2
    retry_max: float = 1.0
    cooldown_base: float = 1.0
    max_wait: float = 5.0
    retry_after: float = 2.0
    offline_hold: float = 2.5
    offline_interval: float = 0.3
    step_limit: float = 8.0
    story_limit: float = 55.0
    rate: float = 50.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"DemoTimings.{name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"DemoTimings.{name} must be a positive number, got {value!r}")

    @classmethod
    def fast(cls) -> DemoTimings:
        """About three times faster: for tests and ``connmgr demo --fast``."""
        return cls(
            think=0.08,
            hold=0.5,
            flaky_hold=1.2,
            retry_base=0.05,
            retry_max=0.2,
            cooldown_base=0.3,
            max_wait=2.0,
            retry_after=0.6,
            offline_hold=0.6,
            offline_interval=0.1,
            step_limit=5.0,
            story_limit=40.0,
        )

    def policy(self) -> MachinePolicy:
        """The demo's :class:`~connmgr.machine.MachinePolicy` (short cooldowns and waits)."""
        return MachinePolicy(cooldown_base=self.cooldown_base, max_wait=self.max_wait)

    def retry(self) -> RetryConfig:
        """The demo's :class:`~connmgr.retry.RetryConfig` (3 retries, short delays)."""
        from connmgr.retry import RetryConfig

        return RetryConfig(
            max_retries=3,
            base_delay=self.retry_base,
            max_delay=self.retry_max,
            jitter_range=self.retry_base / 2,
        )

    def timeouts(self) -> TimeoutProfiles:
        """Short timeouts for loopback: search 1 s connect, 3 s read, 15 s total."""
        from connmgr.timeouts import TimeoutConfig, TimeoutProfiles

        return TimeoutProfiles().with_profile(
            "search", TimeoutConfig(connect=1.0, read=3.0, total=15.0)
        )

    def describe(self) -> str:
        """One line for the demo's header: what was shortened, defaults in brackets."""
        return (
            f"demo timings (connmgr's defaults in brackets): retries after {self.retry_base:g} s "
            f"doubling [0.5 s], circuit cooldown {self.cooldown_base:g} s [2 s], gate waits up "
            f"to {self.max_wait:g} s [30 s], offline re-probe every {self.offline_interval:g} s "
            f"[5 s], search timeouts 1/3/15 s [5/45/90 s], client limit {self.rate:g}/s [10/s]"
        )


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class DemoEvent:
    """Something that happened during the story, for a timeline.

    ``kind`` is one of:

    * ``"chapter"`` — a chapter begins (``chapter`` is its name);
    * ``"step"`` — the script changes the world ("the server starts failing");
    * ``"state"`` — the origin's state changed (``state`` is the new one,
      ``old`` the previous);
    * ``"retry"`` — a search will be retried after ``wait`` seconds (``key`` is
      its request id);
    * ``"rate_limited"`` — searches wait ``wait`` seconds for the server's pause;
    * ``"fail_fast"`` — a search failed at the gate without touching the network
      (``error`` is the error class name, ``elapsed`` how long it took);
    * ``"failed"`` — a search failed for good after trying;
    * ``"network"`` — the network monitor's verdict changed;
    * ``"note"`` — anything else worth a line (an expectation that was missed).

    ``at`` is seconds since the story began; ``text`` is a plain line.
    """

    at: float
    kind: str
    text: str
    chapter: str | None = None
    state: ConnectionState | None = None
    old: ConnectionState | None = None
    wait: float | None = None
    key: object = None
    error: str | None = None
    elapsed: float | None = None


# --------------------------------------------------------------------------- story


class StoryContext:
    """What a chapter's script can do: change the server, lose the network, wait for states."""

    def __init__(
        self,
        manager: ConnectionManager,
        server: FaultServer,
        *,
        set_network: Callable[[bool], None],
        timings: DemoTimings,
        emit: Callable[..., None],
        deadline: float,
        stop: threading.Event,
    ) -> None:
        self.manager = manager
        self.server = server
        self.set_network = set_network
        self.timings = timings
        self.emit = emit
        self.deadline = deadline
        self.stop = stop
        self.chapter = ""
        self.missed: list[str] = []
        self._cond = threading.Condition()
        self._changes: list[tuple[ConnectionState, ConnectionState]] = []

    def record_change(self, old: ConnectionState, new: ConnectionState) -> None:
        """Called for every state change of the API's origin (any thread)."""
        with self._cond:
            self._changes.append((old, new))
            self._cond.notify_all()

    def changes(self) -> list[tuple[ConnectionState, ConnectionState]]:
        """Every state change recorded so far, in order."""
        with self._cond:
            return list(self._changes)

    def mark(self) -> int:
        """A position in the change log: :meth:`wait_for` looks at changes after it."""
        with self._cond:
            return len(self._changes)

    def serve(self, route: str | None, text: str) -> None:
        """Make the search endpoint behave like ``route`` (``None``: healthy) and say so."""
        self.server.alias(SEARCH_PATH, route or "/ok?delay=0.02")
        self.emit("step", text)

    def hold(self, seconds: float) -> None:
        """Let the workers run for ``seconds`` (cut short when the story must end)."""
        end = min(time.monotonic() + seconds, self.deadline)
        self.stop.wait(max(0.0, end - time.monotonic()))

    def wait_for(
        self,
        state: ConnectionState,
        *,
        since: int | None = None,
        old: ConnectionState | None = None,
        what: str | None = None,
    ) -> bool:
        """Wait until the origin enters ``state`` (from ``old``, if given) after ``since``.

        ``since`` defaults to now; when it is given, a change that already happened
        after it counts. Bounded by ``timings.step_limit`` and the story's end; a
        miss is reported as a ``"note"`` event and in the report.
        """
        start = self.mark() if since is None else since
        end = min(time.monotonic() + self.timings.step_limit, self.deadline)

        def seen() -> bool:
            return any(
                new is state and (old is None or was is old) for was, new in self._changes[start:]
            )

        with self._cond:
            while not seen():
                remaining = end - time.monotonic()
                if remaining <= 0 or self.stop.is_set():
                    break
                self._cond.wait(min(remaining, 0.1))
            else:
                return True
        label = what or (f"{old.value} → {state.value}" if old else state.value)
        self.missed.append(f"{self.chapter}: {label}")
        self.emit("note", f"(did not see {label} within {self.timings.step_limit:g} s; moving on)")
        return False

    def wait_until(self, predicate: Callable[[], bool], *, what: str) -> bool:
        """Poll ``predicate`` (every 20 ms) until it holds; bounded like :meth:`wait_for`."""
        end = min(time.monotonic() + self.timings.step_limit, self.deadline)
        while not predicate():
            if time.monotonic() >= end or self.stop.wait(0.02):
                self.missed.append(f"{self.chapter}: {what}")
                self.emit(
                    "note", f"(did not see {what} within {self.timings.step_limit:g} s; moving on)"
                )
                return False
        return True

    def snapshot(self) -> Any:
        """The API origin's :class:`~connmgr.manager.ConnectionSnapshot` now."""
        return self.manager.snapshot(self.server.url)

    def settle(self) -> None:
        """End a chapter healthy: the server answers, and the origin is online again."""
        self.server.alias(SEARCH_PATH, "/ok?delay=0.02")
        if self.manager.state_for(self.server.url) is not S.ONLINE:
            self.wait_for(S.ONLINE, what="back to online")


@dataclass(frozen=True, slots=True)
class Chapter:
    """One chapter of the story: a name for ``--scenario``, words, the script.

    ``visits`` are the states the chapter is expected to pass through; ``script``
    drives the world through a :class:`StoryContext` and ends with the origin online.
    """

    name: str
    title: str
    summary: str
    visits: tuple[ConnectionState, ...]
    script: Callable[[StoryContext], None]


def _healthy(ctx: StoryContext) -> None:
    ctx.serve(None, "the store answers every search in about 20 ms")
    ctx.hold(ctx.timings.hold)


def _flaky(ctx: StoryContext) -> None:
    since = ctx.mark()
    # Seed 11: at most 3 failures in a row over the first 400 answers, so a flaky
    # server degrades the link without ever tripping the circuit (trip_after=5).
    ctx.serve(
        "/random?rate=0.3&status=503&seed=11", "the store turns flaky: 30% of answers are 503"
    )
    ctx.wait_for(S.DEGRADED, since=since)
    ctx.hold(ctx.timings.flaky_hold)
    ctx.emit("step", "the store is healthy again")
    ctx.settle()


def _outage(ctx: StoryContext) -> None:
    since = ctx.mark()
    ctx.serve("/status/503", "the store goes down: every answer is 503")
    if ctx.wait_for(S.BACKOFF, since=since, what="the circuit opening (backoff)"):
        # The first trial after the cooldown fails too, and the cooldown doubles. The
        # manager signals no backoff -> backoff change, so watch the cooldown's end move.
        opened = ctx.snapshot().resume_at or 0.0

        def trial_failed() -> bool:
            snap = ctx.snapshot()
            return bool(
                snap.state is S.BACKOFF and snap.resume_at and snap.resume_at > opened + 0.05
            )

        if ctx.wait_until(trial_failed, what="a failed trial (backoff → backoff)"):
            retry_in = ctx.snapshot().retry_in or 0.0
            ctx.record_change(S.BACKOFF, S.BACKOFF)
            ctx.emit(
                "state",
                f"backoff → backoff: the trial request failed; next trial in {retry_in:.1f} s",
                state=S.BACKOFF,
                old=S.BACKOFF,
                wait=retry_in,
                key=("cooldown", ctx.server.url),
            )
    since = ctx.mark()
    ctx.serve(None, "the store is back up")
    ctx.wait_for(S.DEGRADED, since=since, old=S.BACKOFF, what="a successful trial (degraded)")
    ctx.wait_for(S.ONLINE, since=since, what="back to online")


def _rate_limit(ctx: StoryContext) -> None:
    since = ctx.mark()
    pause = ctx.timings.retry_after
    ctx.serve(
        f"/status/429?retry_after={pause:g}",
        f"the store rate-limits us: 429 with Retry-After: {pause:g}",
    )
    if ctx.wait_for(S.RATE_LIMITED, since=since):
        # The quota comes back after the pause; the searches already wait for it.
        ctx.serve(None, "the store's quota resets; searches go again after the pause")
    ctx.wait_for(S.ONLINE, since=since, what="back to online after the pause")
    ctx.emit("step", "everything is fine again")
    ctx.hold(ctx.timings.hold)


def _network(ctx: StoryContext) -> None:
    since = ctx.mark()
    ctx.set_network(False)
    ctx.emit("step", "the network is lost: the probe fails and the store cannot be reached")
    ctx.wait_for(S.OFFLINE, since=since)
    ctx.hold(ctx.timings.offline_hold)
    since = ctx.mark()
    ctx.set_network(True)
    ctx.emit("step", "the network is back")
    ctx.wait_for(S.ONLINE, since=since, old=S.OFFLINE, what="offline → online")
    ctx.hold(ctx.timings.hold / 2)


#: The story, in order. ``connmgr demo --scenario NAME`` runs one chapter alone.
CHAPTERS: tuple[Chapter, ...] = (
    Chapter(
        "healthy",
        "Healthy",
        "every search answered; the origin stays online",
        (S.ONLINE,),
        _healthy,
    ),
    Chapter(
        "flaky",
        "Flaky server",
        "30% 503s: retries hide them; online → degraded → online",
        (S.DEGRADED, S.ONLINE),
        _flaky,
    ),
    Chapter(
        "outage",
        "Outage",
        "all 503: circuit opens (backoff), failed trial, server back, trial succeeds",
        (S.BACKOFF, S.DEGRADED, S.ONLINE),
        _outage,
    ),
    Chapter(
        "rate-limit",
        "Rate limited",
        "429 + Retry-After: rate_limited, searches wait the pause, then fine",
        (S.RATE_LIMITED, S.ONLINE),
        _rate_limit,
    ),
    Chapter(
        "network",
        "Network lost",
        "the probe fails: offline, searches fail fast; network back: online",
        (S.OFFLINE, S.ONLINE),
        _network,
    ),
)


def chapter_names() -> tuple[str, ...]:
    """The names ``--scenario`` accepts, in story order."""
    return tuple(chapter.name for chapter in CHAPTERS)


def _chapters(selection: Sequence[str | Chapter] | None) -> tuple[Chapter, ...]:
    if selection is None:
        return CHAPTERS
    by_name = {chapter.name: chapter for chapter in CHAPTERS}
    chosen: list[Chapter] = []
    for item in selection:
        if isinstance(item, Chapter):
            chosen.append(item)
        elif item in by_name:
            chosen.append(by_name[item])
        else:
            raise ValueError(f"unknown demo scenario {item!r}; known: {', '.join(chapter_names())}")
    return tuple(chosen)


# --------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the story did, for the summary table and for tests.

    ``transitions`` are the origin's state changes in order; ``states_visited``
    the distinct states seen, first visit first (starting with the state at the
    start); ``failed`` counts searches that failed for good per error class, with
    one ``messages`` user message per class; ``fail_fast`` how many of those were
    answered at the gate without touching the network; ``missed`` the expected
    states the script waited for in vain; ``unexpected`` exceptions outside
    connmgr's error tree (there should be none).
    """

    chapters: tuple[str, ...]
    elapsed: float
    searches: int
    succeeded: int
    cancelled: int
    failed: Mapping[str, int]
    messages: Mapping[str, str]
    fail_fast: int
    fail_fast_median: float | None
    attempts: int
    retries: int
    server_hits: int
    transitions: tuple[tuple[ConnectionState, ConnectionState], ...]
    states_visited: tuple[ConnectionState, ...]
    time_in_state: Mapping[str, float]
    missed: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def sends_per_search(self) -> float:
        """Attempts that reached the server per search (1.0 = no retries)."""
        return self.server_hits / self.searches if self.searches else 0.0

    @property
    def accounted(self) -> bool:
        """Every search either succeeded, failed with a connmgr error, or was cancelled."""
        return (
            self.searches == self.succeeded + sum(self.failed.values()) + self.cancelled
            and not self.unexpected
        )

    @property
    def ok(self) -> bool:
        """Every expected state was reached and nothing escaped the error tree."""
        return not self.missed and not self.unexpected and self.accounted


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    searches: int = 0
    succeeded: int = 0
    cancelled: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    messages: dict[str, str] = field(default_factory=dict)
    fail_fast_times: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- runner


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

    timings = timings or DemoTimings()
    chosen = _chapters(chapters)
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

    def on_retry(sender: object, **kw: Any) -> None:
        attempt, most = kw.get("attempt"), kw.get("max_attempts")
        delay = float(kw.get("delay") or 0.0)
        emit(
            "retry",
            f"search #{kw.get('request_id')}: {_short_reason(kw.get('error'))}; "
            f"retry {attempt}/{most} in {delay:.1f} s",
            wait=delay,
            key=kw.get("request_id"),
        )

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
                manager.get(search_url, params={"q": query}, operation="search", cancel=token)
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
                with tally.lock:
                    tally.succeeded += 1
            finished.wait(timings.think * rng.uniform(0.5, 1.5))

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"connmgr-demo-worker-{i}", daemon=True)
        for i in range(workers)
    ]
    with contextlib.ExitStack() as stack:
        stack.enter_context(signals.state_changed.connected_to(on_state, sender=manager))
        stack.enter_context(signals.retry_scheduled.connected_to(on_retry, sender=manager))
        stack.enter_context(signals.rate_limited.connected_to(on_rate_limited, sender=manager))
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


# --------------------------------------------------------------------------- the world


class DemoWorld:
    """The embedded world of the terminal demo: a store API, an "internet", one manager.

    Two loopback :class:`~connmgr.testing.FaultServer` instances: ``api`` (what the
    workers search) and ``internet`` (what the network monitor probes,
    ``/generate_204``). :meth:`set_network` loses the network (the probe is reset,
    the API stops listening) or brings it back. Nothing leaves 127.0.0.1.

    Example::

        with DemoWorld() as world:
            world.manager.get("/api/search", params={"q": "disco"}, operation="search")
    """

    def __init__(self, *, timings: DemoTimings | None = None, seed: int = 6) -> None:
        from connmgr.manager import ConnectionManager
        from connmgr.network import HttpProbe, NetworkMonitor
        from connmgr.ratelimit import OriginRateLimits, RateLimit
        from connmgr.testing import FaultServer

        self.timings = timings or DemoTimings()
        self.api = FaultServer().start()
        self.internet = FaultServer().start()
        try:
            self.api.alias(SEARCH_PATH, "/ok?delay=0.02")
            self.monitor: NetworkMonitor = NetworkMonitor(
                probes=[HttpProbe(self.internet.url_for("/generate_204"))],
                interval=max(5.0, self.timings.offline_interval),
                offline_interval=self.timings.offline_interval,
                timeout=0.5,
                debounce=0.0,
                portal_grace=0.0,
            )
            self.manager: ConnectionManager = ConnectionManager(
                self.api.url,
                timeouts=self.timings.timeouts(),
                retry=self.timings.retry(),
                rate_limits=OriginRateLimits(
                    default=RateLimit(max_requests=self.timings.rate, time_window=1.0)
                ),
                monitor=self.monitor,
                policy=self.timings.policy(),
                rng=random.Random(seed),
            )
            self.monitor.start()
        except BaseException:
            self.api.close()
            self.internet.close()
            raise
        self.network_up = True

    def set_network(self, up: bool) -> None:
        """Lose the network (probe reset, API refusing) or bring it back."""
        if up and not self.network_up:
            self.api.start()
            self.internet.alias("/generate_204", None)
        elif not up and self.network_up:
            self.internet.alias("/generate_204", "/reset")
            self.api.stop()
        self.network_up = up
        self.monitor.hint_changed("demo")

    def close(self) -> None:
        """Stop the watcher, close the manager, stop both servers."""
        with contextlib.suppress(Exception):
            self.monitor.stop()
        with contextlib.suppress(Exception):
            self.manager.close()
        self.api.close()
        self.internet.close()

    def __enter__(self) -> DemoWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- terminal


class TimelinePrinter:
    """The terminal view of the story: a live timeline, then a summary.

    Chapters and steps are headlines; state changes are coloured; each retry
    and rate-limit wait is a line plus a countdown (live on a terminal); fail-fasts
    of the same kind within a second are folded into one line with a count.

    Example::

        with Terminal(sys.stdout) as term:
            printer = TimelinePrinter(term)
            report = run_story(..., on_event=printer)
            printer.summary(report)
    """

    def __init__(self, terminal: Terminal, *, fold: float = 1.0) -> None:
        self.term = terminal
        self.fold = fold
        self._lock = threading.Lock()
        self._folded: dict[str, list[float]] = {}  # error class -> [first at, count, last µs]
        self._last_rate: float = -math.inf

    def __call__(self, event: DemoEvent) -> None:
        """Print one event (thread-safe)."""
        from connmgr.cli import state_style

        with self._lock:
            if event.kind != "fail_fast":
                self._flush_folded(event.at)
            stamp = f"{event.at:5.1f}s"
            if event.kind == "chapter":
                self.term.line("")
                self.term.line(f"{stamp}  ━━ {event.text}", style="bold")
            elif event.kind == "step":
                self.term.line(f"{stamp}  ▸ {event.text}", style="bold cyan")
            elif event.kind == "state":
                self.term.line(f"{stamp}  ● {event.text}", style=state_style(event.state))
                if event.wait:
                    self.term.wait(event.key, "trial request", event.wait, announce=False)
            elif event.kind == "retry":
                self.term.line(f"{stamp}    ↻ {event.text}", style="yellow")
                self.term.wait(
                    event.key, f"retrying search #{event.key}", event.wait or 0.0, announce=False
                )
            elif event.kind == "rate_limited":
                # Every gated search reports the same pause; one line per pause.
                if event.at - self._last_rate > 0.5:
                    self._last_rate = event.at
                    self.term.line(f"{stamp}    ⏸ {event.text}", style="magenta")
                    self.term.wait(
                        event.key, "the server's pause ends", event.wait or 0.0, announce=False
                    )
            elif event.kind == "fail_fast":
                self._fold(event, stamp)
            elif event.kind == "failed":
                self.term.line(f"{stamp}    ✗ {event.text}", style="red")
            elif event.kind == "network":
                self.term.line(f"{stamp}  ◆ {event.text}", style="bold")
            else:
                self.term.line(f"{stamp}    {event.text}", style="dim")

    def _fold(self, event: DemoEvent, stamp: str) -> None:
        name = event.error or "error"
        entry = self._folded.get(name)
        if entry is None or event.at - entry[0] > self.fold:
            if entry is not None:
                self._flush_one(name, entry)
            self.term.line(f"{stamp}    ⚡ {event.text}", style="red")
            self._folded[name] = [event.at, 0.0, 0.0]
        else:
            entry[1] += 1
            entry[2] = max(entry[2], (event.elapsed or 0.0) * 1e6)

    def _flush_one(self, name: str, entry: list[float]) -> None:
        if entry[1]:
            self.term.line(
                f"        … and {int(entry[1])} more {name} fail-fast"
                f"{'s' if entry[1] != 1 else ''} (slowest {entry[2]:.0f} µs, no request sent)",
                style="red",
            )

    def _flush_folded(self, now: float) -> None:
        for name, entry in list(self._folded.items()):
            self._flush_one(name, entry)
            del self._folded[name]

    def header(self, world: DemoWorld | None, timings: DemoTimings, workers: int) -> None:
        """What is about to happen, and which timings were shortened."""
        where = f" at {world.api.url}" if world is not None else ""
        self.term.line(
            f"connmgr demo: {workers} worker threads search a store API (a loopback FaultServer"
            f"{where}) through one ConnectionManager while the world misbehaves.",
            style="bold",
        )
        self.term.line(timings.describe(), style="dim")

    def summary(self, report: DemoReport) -> None:
        """The closing tables: counts, failures by class, time in each state."""
        with self._lock:
            self._flush_folded(report.elapsed)
        self.term.line("")
        failed = sum(report.failed.values())
        rows = [
            ("searches (logical requests)", str(report.searches)),
            ("  succeeded", str(report.succeeded)),
            ("  failed (with a plain-words error)", str(failed)),
            ("  cancelled when the demo ended", str(report.cancelled)),
            ("attempts sent to the server", str(report.server_hits)),
            ("retries", str(report.retries)),
            ("sends per search (a fail-fast sends none)", f"{report.sends_per_search:.2f}"),
        ]
        if report.fail_fast:
            median = (report.fail_fast_median or 0.0) * 1e6
            rows.append(
                ("fail-fasts (no request sent)", f"{report.fail_fast} (median {median:.0f} µs)")
            )
        self.term.table(f"Summary after {report.elapsed:.1f} s", ("", "count"), rows)
        if report.failed:
            self.term.line("")
            self.term.table(
                "Failures by class",
                ("error", "count", "what the user is told"),
                [
                    (name, str(count), report.messages.get(name, ""))
                    for name, count in sorted(report.failed.items(), key=lambda kv: -kv[1])
                ],
                align="lrl",
            )
        if report.time_in_state:
            self.term.line("")
            self.term.table(
                "Time in each state",
                ("state", "seconds"),
                [
                    (state.value, f"{report.time_in_state.get(state.value, 0.0):.1f}")
                    for state in ConnectionState
                ],
            )
        self.term.line("")
        visited = ", ".join(state.value for state in report.states_visited)
        self.term.line(f"states visited: {visited}")
        if report.accounted:
            self.term.line(
                f"every search accounted for: {report.searches} = {report.succeeded} succeeded"
                f" + {failed} failed + {report.cancelled} cancelled; nothing escaped the error"
                " tree.",
                style="green",
            )
        for miss in report.missed:
            self.term.line(f"missed: {miss}", style="bold red")
        for problem in report.unexpected:
            self.term.line(f"unexpected: {problem}", style="bold red")


# --------------------------------------------------------------------------- CLI


def run_cli(args: argparse.Namespace, terminal: Terminal) -> int:
    """``connmgr demo`` in a terminal: header, live timeline, summary; exit 0 when all went to plan.

    ``args`` holds ``scenario`` (a chapter name or ``None``), ``fast`` and ``workers``.
    Exits 1 when an expected state was not reached or an exception escaped the tree.
    """
    timings = DemoTimings.fast() if getattr(args, "fast", False) else DemoTimings()
    scenario = getattr(args, "scenario", None)
    workers = int(getattr(args, "workers", 4) or 4)
    try:
        chapters = _chapters([scenario] if scenario else None)
    except ValueError as exc:
        terminal.line(f"error: {exc}", style="bold red")
        return 64
    printer = TimelinePrinter(terminal)
    with terminal, DemoWorld(timings=timings) as world:
        printer.header(world, timings, workers)
        report = run_story(
            world.manager,
            world.api,
            set_network=world.set_network,
            chapters=chapters,
            timings=timings,
            workers=workers,
            on_event=printer,
        )
        terminal.stop()
        printer.summary(report)
    if scenario is None:
        missing = [s.value for s in ConnectionState if s not in report.states_visited]
        if missing:
            terminal.line(f"not visited: {', '.join(missing)}", style="bold red")
            return 1
    return 0 if report.ok else 1
