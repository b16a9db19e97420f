"""One request's signals, told on a terminal: state changes, retries, and one countdown per wait.

A manager announces a wait in two ways. ``retry_scheduled`` says "the next
attempt goes in ``delay`` seconds"; ``rate_limited`` says "this origin is
paused for ``wait`` seconds". For one 429 both arrive, back to back from the
same thread (the response is recorded, then the retry is decided), and they
describe the *same* wait: printing a countdown for each made one pause look
like two. A ``rate_limited`` without a retry is a real wait of its own (a
request waiting at the gate), or none at all (the retries ran out and the
error follows).

So :class:`RequestNarrator` holds a ``rate_limited`` back for a moment
(``grace``): a retry that follows takes it over (one countdown, labelled as
the retry, saying the server asked for the pause), the end of the request
drops it, and otherwise it becomes a countdown of its own. A wait that an
earlier countdown already covers gets no second one.

Retries are counted here, from the signals: "retry 1/3" is the first retry of
three allowed, whatever the signal's own attempt numbers say.

Example::

    narrator = RequestNarrator(term, max_retries=3)
    with narrator.listening(manager):
        manager.get(url)
    narrator.retries          # how many retries were scheduled
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

from connmgr.terminal import Terminal, format_seconds, state_style

__all__ = ["RequestNarrator"]

# The one countdown of the request: a new wait replaces the old one in place.
_COUNTDOWN = "wait"
# Two announced waits that end this close together are one wait (a retry's
# jitter on top of the server's Retry-After is at most a fraction of a second).
_SAME_WAIT = 0.5


class RequestNarrator:
    """Turns one request's signals into lines on ``term``, with one countdown per wait.

    ``max_retries`` is the ``R`` of "retry k/R". ``grace`` is how long a
    ``rate_limited`` waits for a retry to take it over. ``verbose`` adds a line
    per logical request started; ``quiet`` prints nothing (the counts and
    :attr:`attempt_errors` are kept all the same). Every receiver is safe to call
    from any thread.
    """

    def __init__(
        self,
        term: Terminal,
        *,
        max_retries: int,
        verbose: bool = False,
        quiet: bool = False,
        grace: float = 0.15,
    ) -> None:
        self.term = term
        self.quiet = quiet
        self.max_retries = max_retries
        self.verbose = verbose
        self.grace = grace
        #: Retries scheduled so far.
        self.retries = 0
        #: The error of each failed attempt that led to a retry, in order.
        self.attempt_errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._pending: tuple[str, float, float] | None = None  # origin, seconds, ends at
        self._timer: threading.Timer | None = None
        self._shown_until: float | None = None  # the end of the countdown on screen
        self._pause_until: float | None = None  # ... when it counts down a server's pause

    @contextlib.contextmanager
    def listening(self, manager: Any) -> Iterator[RequestNarrator]:
        """Connect the receivers to ``manager``'s signals for the block; tidy up after."""
        from connmgr import signals

        pairs = (
            (signals.state_changed, self.on_state),
            (signals.retry_scheduled, self.on_retry),
            (signals.rate_limited, self.on_rate_limited),
            (signals.request_started, self.on_started),
            (signals.request_finished, self.on_finished),
        )
        with contextlib.ExitStack() as stack:
            for signal, receiver in pairs:
                stack.enter_context(signal.connected_to(receiver, sender=manager))
            try:
                yield self
            finally:
                self.close()

    def close(self) -> None:
        """Drop a pause still held back and clear the countdown."""
        with self._lock:
            self._drop_pending()
            self._shown_until = self._pause_until = None
        self.term.done(_COUNTDOWN)

    # -- receivers -------------------------------------------------------------------

    def on_state(self, sender: object, **kw: Any) -> None:
        """``state_changed``: one coloured line."""
        if self.quiet:
            return
        old, new = kw.get("old"), kw.get("new")
        self.term.line(
            f"state {kw.get('origin')}: {getattr(old, 'value', old)} → "
            f"{getattr(new, 'value', new)} ({kw.get('reason')})",
            style=state_style(new),
        )

    def on_retry(self, sender: object, **kw: Any) -> None:
        """``retry_scheduled``: what failed, then the countdown to the retry."""
        error = kw.get("error")
        delay = _seconds(kw.get("delay")) or 0.0
        now = time.monotonic()
        ends = now + delay
        with self._lock:
            self.retries += 1
            number = self.retries
            if error is not None:
                self.attempt_errors.append(error)
            # Only a pause can cover a retry: a retry's own countdown is over by the
            # time the next retry is scheduled.
            pending, covered = self._pending, _covers(self._pause_until, ends)
            self._drop_pending()
            if pending is not None:
                if pending[2] > ends:
                    # A retry due before the pause ends waits at the gate for the rest
                    # of it: it goes when the pause is over, and the countdown says so.
                    delay, ends = pending[2] - now, pending[2]
                self._pause_until = ends
            if covered:
                ends = max(ends, self._shown_until or 0.0)
            self._shown_until = ends
        if self.quiet:
            return
        why = getattr(error, "user_message", None) or str(error)
        if pending is not None:
            why += f" Requests to {pending[0]} are paused for {format_seconds(pending[1])}."
        label = f"retry {number}/{self.max_retries}"
        self.term.line(f"attempt {number} failed: {why}", style="yellow")
        if covered and pending is None:
            # The countdown on screen (the server's pause) already runs to this retry.
            self.term.relabel(_COUNTDOWN, label)
            if not self.term.live:
                self.term.line(f"{label} when the pause ends")
            return
        self.term.wait(_COUNTDOWN, label, delay)

    def on_rate_limited(self, sender: object, **kw: Any) -> None:
        """``rate_limited``: held back for ``grace``; a retry that follows takes it over."""
        wait = _seconds(kw.get("wait"))
        if self.quiet or wait is None or wait <= 0:
            return
        ends = time.monotonic() + wait
        with self._lock:
            if _covers(self._shown_until, ends):
                return  # the countdown on screen already runs to the end of this pause
            self._drop_pending()
            self._pending = (str(kw.get("origin")), wait, ends)
            timer = self._timer = threading.Timer(self.grace, self._show_pending)
            timer.daemon = True
        timer.start()

    def on_started(self, sender: object, **kw: Any) -> None:
        """``request_started``: a line with ``verbose``."""
        if self.verbose and not self.quiet:
            self.term.line(
                f"→ {kw.get('method')} {kw.get('url')} (operation {kw.get('operation')})"
            )

    def on_finished(self, sender: object, **kw: Any) -> None:
        """``request_finished``: no wait is ahead any more."""
        self.close()

    # -- waits -----------------------------------------------------------------------

    def _drop_pending(self) -> None:
        # Under the lock.
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _show_pending(self) -> None:
        with self._lock:
            pending = self._pending
            self._pending, self._timer = None, None
            if pending is None:
                return
            origin, _seconds, ends = pending
            remaining = ends - time.monotonic()
            if remaining <= 0:
                return
            self._shown_until = self._pause_until = ends
        self.term.line(f"rate limited by {origin}: the server asked for a pause", style="magenta")
        self.term.wait(_COUNTDOWN, "sending again", remaining)


def _covers(until: float | None, ends: float) -> bool:
    """Whether a countdown running until ``until`` also counts down a wait ending at ``ends``."""
    return until is not None and until >= ends - _SAME_WAIT and until > time.monotonic()


def _seconds(value: object) -> float | None:
    """A wait from a signal as finite seconds; ``None`` for anything else (never raises:
    a receiver that raised would be the app's problem, not the user's)."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
