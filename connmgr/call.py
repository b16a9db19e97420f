"""One logical request as it goes through the manager's loop.

A :class:`Call` holds what every step of the loop reads (the prepared request,
the deadline, the cancel token) and the per-call rules that need nothing but
the call: the cap rule, cancellation, and the errors of a refused gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from connmgr.clock import CancelToken
from connmgr.errors import BackoffError, NetworkError, RateLimitError, RequestCancelledError
from connmgr.machine import ConnectionState
from connmgr.ratelimit.lanes import Priority
from connmgr.timeouts import Deadline, TimeoutConfig

__all__ = ["Call"]


@dataclass(slots=True, kw_only=True)
class Call:
    """One logical request; the loop's attempts share it."""

    request_id: int
    method: str
    url: str
    #: The URL with credentials redacted: for signals, errors and logs.
    shown_url: str
    origin: str
    operation: str
    config: TimeoutConfig
    deadline: Deadline
    prepared: requests.PreparedRequest
    send_kwargs: dict[str, Any]
    #: The token waits and the transport watch. ``None`` until someone could cancel:
    #: the caller passed one, a signal hands it out, or the call waits (so that
    #: close() and cancel_all() can end the wait).
    cancel: CancelToken | None
    wait_for_network: bool
    #: The call's lane at a rate limit (``"interactive"``, ``"background"`` or 0-9).
    priority: Priority = "interactive"
    attempts: int = 0
    #: What the loop did, step by step, as the history keeps it (see connmgr.history).
    notes: list[tuple[Any, ...]] = field(default_factory=list)

    def cap(self, max_wait: float) -> float:
        """The cap rule: the longest any wait of this call may take now.

        ``min(deadline remaining, max_wait)``, for the gate, a server's pause and
        a retry delay alike.
        """
        remaining = self.deadline.remaining()
        return max_wait if remaining is None else min(max_wait, remaining)

    def token(self) -> CancelToken:
        """The call's cancel token, made now if it has none."""
        if self.cancel is None:
            self.cancel = CancelToken()
        return self.cancel

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~connmgr.RequestCancelledError` once the token is cancelled."""
        token = self.cancel
        if token is not None and token.cancelled:
            raise RequestCancelledError(
                token.reason or "cancelled",
                url=self.shown_url,
                attempts=self.attempts,
                operation=self.operation,
            )

    def gate_error(self, state: ConnectionState, retry_in: float | None) -> NetworkError:
        """The error of a gate that would make this call wait too long (nothing sent)."""
        if state is ConnectionState.RATE_LIMITED:
            return RateLimitError(
                "rate limited: waiting would pass the deadline or max_wait",
                url=self.shown_url,
                retry_after=retry_in,
                operation=self.operation,
            )
        return BackoffError(
            "the circuit is open: the server is failing",
            url=self.shown_url,
            retry_in=retry_in,
            operation=self.operation,
        )
