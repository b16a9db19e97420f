"""The delivery pass: send what is due, oldest first per origin, and record each answer.

One pass (:meth:`Courier.deliver_due`) expires entries past their time to live,
then walks the open entries in submission order, grouped by origin. Within an
origin it sends entry after entry until one is not delivered (or not due, or
its origin's gate is closed); the later entries of that origin wait for the
next pass, so an origin's changes always arrive in the order they were made.

Nothing is sent unless the network is validated online (the manager's monitor
says ``ONLINE``), and nothing is sent to an origin whose gate is closed
(``offline``, ``backoff`` or ``rate_limited`` with time left): neither counts
as an attempt. On a ``LIMITED`` network (a link, but the internet checks fail:
an intranet, public names not resolving) an origin proves itself instead: its
oldest entry goes as a trial, and the rest follow once the origin has given an
HTTP answer on this network. Offline, behind a captive portal or while the
status is unknown, nothing goes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import sqlite3
from collections.abc import Callable
from typing import Any

from connmgr import signals
from connmgr.clock import CancelToken, Clock
from connmgr.errors import NetworkError, redact_text
from connmgr.machine import ConnectionState
from connmgr.network import NetworkStatus
from connmgr.outbox.entry import DELIVERED, EXPIRED, FAILED, QUEUED, SENDING
from connmgr.outbox.request import resolve_url
from connmgr.outbox.store import Store
from connmgr.outbox.verdict import Verdict, judge_error, judge_response
from connmgr.ratelimit import origin_of

__all__ = ["Courier"]

logger = logging.getLogger("connmgr.outbox")

_GATED_STATES = (ConnectionState.OFFLINE, ConnectionState.BACKOFF, ConnectionState.RATE_LIMITED)
#: A network without validated internet (older monitors have no such status).
_LIMITED: Any = getattr(NetworkStatus, "LIMITED", None)


class Courier:
    """Sends an outbox's due entries through a manager (one pass at a time: the caller
    serialises passes).

    Args:
        store: the outbox's :class:`~connmgr.outbox.store.Store`.
        manager: the :class:`~connmgr.ConnectionManager` to send through.
        base_url: the base in effect for stored relative URLs.
        clock: the outbox's (wall) clock.
        rng: randomness for the backoff jitter.
        retry_delay, max_retry_delay: the backoff (validated by the outbox).
        changed: called for every state change with ``(entry_id, state, url, row)``;
            ``row`` is the entry's row when the courier already read it.
    """

    def __init__(
        self,
        store: Store,
        manager: Any,
        *,
        base_url: str | None,
        clock: Clock,
        rng: random.Random,
        retry_delay: float,
        max_retry_delay: float,
        changed: Callable[[int, str, str, sqlite3.Row | None], None],
    ) -> None:
        self.store = store
        self.manager = manager
        self.base_url = base_url
        self.clock = clock
        self.rng = rng
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._changed = changed
        #: Delivered entries whose rows are deleted with the next write (see mark_sending).
        self._delivered: list[int] = []
        #: Origins that gave an HTTP answer on this network (for a LIMITED network).
        self._answered: set[str] = set()

    def url_of(self, row: sqlite3.Row) -> str:
        """Where a stored entry goes now (not redacted)."""
        return resolve_url(self.base_url, row["base"], row["ref"])

    def deliver_due(self, cancel: CancelToken, deadline: float) -> float | None:
        """One pass; return the clock time when another pass may achieve something,
        or ``None`` when nothing is left to send."""
        try:
            return self._pass(cancel, deadline)
        finally:
            delivered, self._delivered = self._delivered, []
            self.store.delete_many(delivered)

    def _pass(self, cancel: CancelToken, deadline: float) -> float | None:
        now = self.clock.now()
        self.expire(now)
        # No wait is longer than max_retry_delay: a time further ahead means the wall
        # clock was set back, and the entry must not be parked until it catches up.
        self.store.clamp_waits(latest=now + self.max_retry_delay)
        heads = self.store.open_heads()
        if not heads:
            return None
        soonest = min(float(row["expires_at"]) for row in heads)
        network = self._network()
        if network is None:
            return min(soonest, now + float(self.manager.monitor.offline_interval))
        by_origin: dict[str, list[tuple[sqlite3.Row, str]]] = {}
        for row in heads:
            url = self.url_of(row)
            by_origin.setdefault(origin_of(url), []).append((row, url))
        for origin, rows in by_origin.items():
            # On a limited network an origin proves itself: its first entry is a trial,
            # and the rest follow once it has answered.
            trial = network is _LIMITED and origin not in self._answered
            for row, url in rows:
                if trial and origin not in self._answered and row is not rows[0][0]:
                    soonest = min(soonest, now + float(self.manager.monitor.offline_interval))
                    break
                now = self.clock.now()
                if cancel.cancelled or now >= deadline:
                    return now
                due = float(row["next_attempt_at"])
                if due > now:
                    soonest = min(soonest, due)
                    break
                # The gate is looked at before an origin's first send of the pass; after
                # that every entry here was delivered or failed for good, which leaves
                # it open (the manager's own gate errors still stop a change under way).
                if row is rows[0][0]:
                    gate_wait = self._gate_wait(origin)
                    if gate_wait is not None:
                        soonest = min(soonest, now + gate_wait)
                        break
                next_try, answered = self._send(int(row["id"]), url, cancel)
                if answered:
                    self._answered.add(origin)
                if next_try is None:
                    continue  # delivered, failed for good, or discarded: the next one may go
                soonest = min(soonest, next_try)
                break
        return soonest

    def expire(self, now: float) -> None:
        """Move entries past their time to live to ``expired``."""
        for row in self.store.expire_due(now=now):
            logger.warning("outbox: entry %d expired: %s", row["id"], row["last_error"])
            self._changed(int(row["id"]), EXPIRED, self.url_of(row), row)

    def network_changed(self) -> None:
        """A new network: which origins answered on the old one says nothing now."""
        self._answered = set()

    def _network(self) -> NetworkStatus | None:
        """``ONLINE`` (validated), ``LIMITED`` (origins must prove themselves), or
        ``None``: nothing may be sent (offline, a captive portal, unknown)."""
        monitor = self.manager.monitor
        if monitor.status is NetworkStatus.ONLINE:
            return NetworkStatus.ONLINE
        # Unknown or stale: ask (cached, or one probe round shared with others).
        monitor.is_online()
        status = monitor.status
        if status is NetworkStatus.ONLINE or status is _LIMITED:
            return status
        return None

    def _gate_wait(self, origin: str) -> float | None:
        """Seconds until the origin's gate opens, or ``None`` when it is open (or a trial
        may go); the manager's own gate errors are only the fallback."""
        state = self.manager.state_for(origin)
        if state not in _GATED_STATES:
            return None
        if state is ConnectionState.OFFLINE:
            return float(self.manager.monitor.offline_interval)
        retry_in = self.manager.snapshot(origin).retry_in
        return retry_in if retry_in else None

    def _send(self, entry_id: int, url: str, cancel: CancelToken) -> tuple[float | None, bool]:
        """Send one entry and record what its answer decided; return when it may be
        tried again (``None`` when it is done with), and whether the server answered."""
        # On disk before the request leaves: a crash from here on resends with this key.
        delivered, self._delivered = self._delivered, []
        row = self.store.mark_sending(entry_id, now=self.clock.now(), delete=delivered)
        if row is None:
            return None, False  # discarded meanwhile
        try:
            kwargs = _request_kwargs(row)
        except (ValueError, TypeError) as exc:
            # A row edited or damaged on disk: fail it alone, the others still go.
            unreadable = Verdict("failed", f"the stored request cannot be read ({_text(exc)})")
            return self._record(entry_id, url, unreadable, attempts=0), False
        self._changed(entry_id, SENDING, url, None)
        try:
            response = self.manager.request(
                row["method"], url, operation=row["operation"], cancel=cancel, **kwargs
            )
        except NetworkError as error:
            verdict = judge_error(error)
        except (TypeError, ValueError) as exc:
            # The manager refused the stored request itself (e.g. an operation profile
            # the app no longer has): sending it again will not help.
            verdict = Verdict("failed", _text(exc), reached=False)
        except Exception as exc:
            logger.exception("outbox: sending entry %d raised", entry_id)
            verdict = Verdict("retry", _text(exc))
        else:
            verdict = judge_response(response)
            # Give the connection back; a cached or hand-made response may have no raw
            # stream to close, and that must not undo a delivery.
            with contextlib.suppress(Exception):
                response.close()
        answered = verdict.status is not None
        return self._record(entry_id, url, verdict, attempts=int(row["attempts"])), answered

    def _record(self, entry_id: int, url: str, verdict: Verdict, *, attempts: int) -> float | None:
        now = self.clock.now()
        if verdict.action == "delivered":
            # The row is read back only for a receiver. It is deleted with the next
            # write (a crash before that sends it once more, with the same key).
            rows = self.store.entries_by_id([entry_id]) if signals.outbox_changed.receivers else []
            self._delivered.append(entry_id)
            logger.debug("outbox: entry %d delivered (%s)", entry_id, verdict.reason)
            self._changed(entry_id, DELIVERED, url, rows[0] if rows else None)
            return None
        if verdict.action == "failed":
            self.store.finish(
                entry_id, FAILED, reason=verdict.reason, status=verdict.status, now=now
            )
            logger.warning("outbox: entry %d failed for good: %s", entry_id, verdict.reason)
            self._changed(entry_id, FAILED, url, None)
            return None
        if verdict.action == "interrupted":
            delay = 0.0
        elif verdict.action == "gated":
            # The manager's gate closed during the call (an earlier attempt in it may
            # have gone out, so the attempt stays counted): wait for the gate only.
            delay = verdict.retry_after if verdict.retry_after else self.retry_delay
        else:
            delay = self._backoff(attempts)
            if verdict.retry_after is not None:
                delay = max(delay, verdict.retry_after)
        delay = min(delay, self.max_retry_delay)
        self.store.reschedule(
            entry_id,
            next_attempt_at=now + delay,
            reason=verdict.reason,
            status=verdict.status,
            reached=verdict.reached,
            now=now,
        )
        logger.info(
            "outbox: entry %d not delivered (%s); next attempt in %.1f s",
            entry_id,
            verdict.reason,
            delay,
        )
        self._changed(entry_id, QUEUED, url, None)
        return now + delay

    def _backoff(self, attempts: int) -> float:
        exponent = min(max(attempts - 1, 0), 60)
        delay = min(self.max_retry_delay, self.retry_delay * 2.0**exponent)
        # Equal jitter: never less than half, so a crowd of clients spreads out.
        return delay / 2 + self.rng.uniform(0.0, delay / 2)


def _request_kwargs(row: sqlite3.Row) -> dict[str, Any]:
    """The keyword arguments for ``manager.request`` from a stored row."""
    headers = {str(name): str(value) for name, value in json.loads(row["headers"])}
    headers["Idempotency-Key"] = str(row["idempotency_key"])
    kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
    if row["body"] is not None:
        kwargs["data"] = bytes(row["body"])
    if row["params"] is not None:
        kwargs["params"] = [(str(name), str(value)) for name, value in json.loads(row["params"])]
    return kwargs


def _text(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}")[:200]
