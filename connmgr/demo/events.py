"""One happening of the demo's story, as the timeline shows it."""

from __future__ import annotations

from dataclasses import dataclass

from connmgr.frozen import explain_frozen
from connmgr.machine import ConnectionState

__all__ = ["DemoEvent"]


@explain_frozen
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
    * ``"stale"`` — a search was answered from the session's cache because no
      live answer could be had (``elapsed`` how long it took);
    * ``"outbox"`` — a change was queued in the outbox, or delivered (``key``
      is its ``Idempotency-Key``);
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
