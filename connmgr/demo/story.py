"""The demo's story: its chapters, and what a chapter's script can do to the world.

Each :class:`Chapter` is data: a name for ``--scenario``, words for the
timeline, the states it should pass through, and a script that drives the
world through a :class:`StoryContext` (change the server's answers, lose the
network, wait for a state). :data:`CHAPTERS` is the whole story, in order.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connmgr.demo.timings import DemoTimings
from connmgr.frozen import explain_frozen
from connmgr.machine import ConnectionState

if TYPE_CHECKING:
    from connmgr.manager import ConnectionManager
    from connmgr.testing.server import FaultServer

__all__ = [
    "CHAPTERS",
    "PLAYLIST_PATH",
    "QUERIES",
    "SEARCH_PATH",
    "Chapter",
    "StoryContext",
    "chapter_names",
    "select_chapters",
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

#: Where the offline-first chapter's playlist edit goes (an alias on the FaultServer).
PLAYLIST_PATH = "/api/playlists/7/tracks"


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
        #: Whether the workers' searches may be answered from the session's cache
        #: (``serve_stale=``) when no live answer can be had.
        self.serve_stale = False
        self._stale_served = 0
        self._cond = threading.Condition()
        self._changes: list[tuple[ConnectionState, ConnectionState]] = []

    def record_change(self, old: ConnectionState, new: ConnectionState) -> None:
        """Called for every state change of the API's origin (any thread)."""
        with self._cond:
            self._changes.append((old, new))
            self._cond.notify_all()

    def count_stale(self) -> None:
        """A worker's search was answered from the cache (any thread)."""
        with self._cond:
            self._stale_served += 1

    @property
    def stale_served(self) -> int:
        """Searches answered from the cache so far."""
        with self._cond:
            return self._stale_served

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


@explain_frozen
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


def _priority(ctx: StoryContext) -> None:
    from connmgr.ratelimit import RateLimit

    limits = ctx.manager.rate_limits
    origin = ctx.server.url
    before = limits.limit_for(origin)
    limits.configure(origin, RateLimit(10, 1.0))
    ctx.emit("step", "the store allows 10 requests/s; the app queues 30 background prefetches")
    limiter = limits.for_origin(origin)
    prefetches = [
        threading.Thread(
            target=_quietly,
            args=(ctx.manager.get, f"/ok?prefetch={i}"),
            kwargs={"priority": "background"},
            daemon=True,
        )
        for i in range(30)
    ]
    for thread in prefetches:
        thread.start()
    ctx.wait_until(lambda: limiter.waiting >= 15, what="prefetches queued at the limiter")
    queued = limiter.waiting
    started = time.monotonic()
    _quietly(ctx.manager.get, SEARCH_PATH, params={"q": "new search"})
    waited = time.monotonic() - started
    ctx.emit(
        "step",
        f"the user's search went ahead of {queued} queued prefetches: it waited "
        f"{waited:.2f} s (at the back of the queue it would have waited ~{queued / 10:.1f} s)",
    )
    for thread in prefetches:
        thread.join(max(0.0, ctx.deadline - time.monotonic()))
    limits.configure(origin, before)
    ctx.emit("step", "the prefetches are done; the limit is back to the app's own")


def _quietly(get: Callable[..., Any], path: str, **kwargs: Any) -> None:
    # A prefetch that fails is the app's business, not the story's.
    with contextlib.suppress(Exception):
        get(path, **kwargs)


def _has_cache(manager: Any) -> bool:
    cache = getattr(getattr(manager, "session", None), "cache", None)
    return callable(getattr(cache, "create_key", None))


def _offline_first(ctx: StoryContext) -> None:
    # On before the network goes: a search in flight when it goes may be answered
    # from the cache too (each search reads the flag when it starts).
    ctx.serve_stale = True
    try:
        _queue_and_serve_stale(ctx)
    finally:
        ctx.serve_stale = False


def _queue_and_serve_stale(ctx: StoryContext) -> None:
    import tempfile
    from pathlib import Path

    import requests

    from connmgr.errors import NetworkError
    from connmgr.outbox import Outbox
    from connmgr.stale import cached_answer

    cached = _has_cache(ctx.manager)
    ctx.server.alias(PLAYLIST_PATH, "/status/201")
    search_url = ctx.server.url_for(SEARCH_PATH)
    session = ctx.manager.session
    for query in QUERIES:
        # The story's searches so far filled the cache; a chapter played alone searches
        # once for what is missing. One that fails here fails fast offline.
        request = requests.Request("GET", search_url, params={"q": query})
        if cached and cached_answer(session, session.prepare_request(request)) is not None:
            continue
        with contextlib.suppress(NetworkError):
            ctx.manager.get(search_url, params={"q": query}, operation="search")
    # Searches that began before serve_stale was on end well within this (20 ms each).
    ctx.hold(ctx.timings.think * 2)
    ctx.emit(
        "step",
        "every search so far was saved by the session's HTTP cache (requests-cache)"
        if cached
        else "this manager's session has no HTTP cache: offline searches fail fast instead",
    )
    with tempfile.TemporaryDirectory(prefix="connmgr-demo-") as home:
        outbox = Outbox(
            Path(home) / "outbox.db", ctx.manager, retry_delay=ctx.timings.retry_base,
            max_retry_delay=ctx.timings.retry_max,
        )  # fmt: skip
        try:
            since = ctx.mark()
            ctx.set_network(False)
            ctx.emit("step", "the network is lost; searches may be answered from the cache")
            ctx.wait_for(S.OFFLINE, since=since)
            outbox.submit("POST", PLAYLIST_PATH, json={"track": 42, "position": 1})
            (entry,) = outbox.pending()
            ctx.emit(
                "outbox",
                f"the user adds a track to a playlist: queued on disk as #{entry.id}"
                f" (Idempotency-Key {entry.idempotency_key}); 1 change waiting to be sent",
                key=entry.idempotency_key,
            )
            if cached:
                ctx.wait_until(lambda: ctx.stale_served > 0, what="a search answered stale")
            ctx.hold(ctx.timings.offline_hold * 0.6)
            outbox.start()  # delivers by itself once the network is validated again
            since = ctx.mark()
            ctx.set_network(True)
            ctx.emit("step", "the network is back")
            ctx.wait_for(S.ONLINE, since=since, old=S.OFFLINE, what="offline → online")
            if ctx.wait_until(lambda: outbox.pending_count == 0, what="the playlist edit sent"):
                sent = ctx.server.requests_to(PLAYLIST_PATH)
                keys = {request.headers.get("Idempotency-Key") for request in sent}
                ctx.emit(
                    "outbox",
                    f"delivered #{entry.id}: the store got POST {PLAYLIST_PATH}"
                    f" {len(sent)} time{'' if len(sent) == 1 else 's'}, with Idempotency-Key"
                    f" {', '.join(sorted(k for k in keys if k))}; nothing waiting to be sent",
                    key=entry.idempotency_key,
                )
        finally:
            outbox.close()
    ctx.hold(ctx.timings.hold / 4)


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
        "priority",
        "Priority lanes",
        "30 background prefetches queued at 10/s: the user's search goes ahead of them",
        (S.ONLINE,),
        _priority,
    ),
    Chapter(
        "network",
        "Network lost",
        "the probe fails: offline, searches fail fast; network back: online",
        (S.OFFLINE, S.ONLINE),
        _network,
    ),
    Chapter(
        "offline-first",
        "Offline-first",
        "network lost again: searches answered from the cache, a playlist edit queued"
        " in the outbox and delivered once the network is back",
        (S.OFFLINE, S.ONLINE),
        _offline_first,
    ),
)


def chapter_names() -> tuple[str, ...]:
    """The names ``--scenario`` accepts, in story order."""
    return tuple(chapter.name for chapter in CHAPTERS)


def select_chapters(selection: Sequence[str | Chapter] | None) -> tuple[Chapter, ...]:
    """The chapters named (or given) in ``selection``, in its order; ``None``: the whole story.

    Raises :class:`ValueError` listing the known names for a name that is not one.
    """
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
