"""One queued request as the app sees it: a frozen :class:`Entry` and its states."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

from connmgr.errors import redact_url
from connmgr.frozen import explain_frozen

__all__ = [
    "DELIVERED",
    "EXPIRED",
    "FAILED",
    "FINAL_STATES",
    "OPEN_STATES",
    "QUEUED",
    "SENDING",
    "STATES",
    "Entry",
]

#: Waiting to be sent (first time, or again after an attempt that did not deliver).
QUEUED: Final = "queued"
#: An attempt is under way.
SENDING: Final = "sending"
#: The server answered 2xx: done (the row is deleted).
DELIVERED: Final = "delivered"
#: The server refused it for good (a 4xx other than 408/425/429, a redirect): kept with its reason.
FAILED: Final = "failed"
#: Its time to live ran out before it was delivered: kept with its reason.
EXPIRED: Final = "expired"

STATES: Final = (QUEUED, SENDING, DELIVERED, FAILED, EXPIRED)
OPEN_STATES: Final = (QUEUED, SENDING)
FINAL_STATES: Final = (DELIVERED, FAILED, EXPIRED)


@explain_frozen
@dataclass(frozen=True, slots=True)
class Entry:
    """A request in the outbox (a snapshot: the outbox goes on changing the row).

    Times are wall-clock seconds since the epoch (``time.time()``, or the
    injected clock). ``url`` is where it goes now (rebased, credentials
    redacted). ``last_error`` says why the last attempt did not deliver it;
    for a ``failed`` or ``expired`` entry it is the final reason.
    """

    id: int
    method: str
    url: str
    state: str
    attempts: int
    created_at: float
    expires_at: float
    #: When the next attempt may go (``None`` once final).
    next_attempt_at: float | None
    last_error: str | None
    #: The HTTP status of the last answer, if there was one.
    status: int | None
    #: Sent on every attempt, so that the server can drop repeats.
    idempotency_key: str

    @property
    def reason(self) -> str | None:
        """``last_error`` under the name a UI uses for failed and expired entries."""
        return self.last_error

    @property
    def final(self) -> bool:
        """Whether the outbox is done with it (delivered, failed or expired)."""
        return self.state in FINAL_STATES

    @classmethod
    def from_row(cls, row: sqlite3.Row, url: str, *, state: str | None = None) -> Entry:
        """Build from a store row; ``url`` is the resolved address (redacted here)."""
        current = state if state is not None else str(row["state"])
        return cls(
            id=int(row["id"]),
            method=str(row["method"]),
            url=redact_url(url),
            state=current,
            attempts=int(row["attempts"]),
            created_at=float(row["created_at"]),
            expires_at=float(row["expires_at"]),
            next_attempt_at=None if current in FINAL_STATES else float(row["next_attempt_at"]),
            last_error=row["last_error"],
            status=row["last_status"],
            idempotency_key=str(row["idempotency_key"]),
        )
