"""What a FaultServer received: each request's headers, body and connection."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from connmgr.frozen import explain_frozen

__all__ = ["RecordedRequest", "RequestHeaders"]


class RequestHeaders(Mapping[str, str]):
    """Request headers as received: a read-only, case-insensitive mapping.

    Iteration yields the names as the client spelled them; a header sent more
    than once maps to its values joined by ``", "`` (all of them are in
    :attr:`raw`).

    Example::

        rec = server.requests[-1]
        assert rec.headers["idempotency-key"] == rec.headers["Idempotency-Key"]
    """

    __slots__ = ("_by_lower", "raw")

    def __init__(self, raw: Sequence[tuple[str, str]] = ()) -> None:
        #: ``(name, value)`` pairs in the order received.
        self.raw: tuple[tuple[str, str], ...] = tuple(raw)
        by_lower: dict[str, tuple[str, str]] = {}
        for name, value in self.raw:
            key = name.lower()
            if key in by_lower:
                first, old = by_lower[key]
                by_lower[key] = (first, f"{old}, {value}")
            else:
                by_lower[key] = (name, value)
        self._by_lower = by_lower

    def __getitem__(self, name: str) -> str:
        return self._by_lower[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_lower

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._by_lower.values())

    def __len__(self) -> int:
        return len(self._by_lower)

    def __repr__(self) -> str:
        return f"RequestHeaders({dict(self.items())!r})"


@explain_frozen
@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it (see :attr:`FaultServer.requests`).

    ``path`` is the path the client asked for, without the query (for an
    aliased path, the alias, not its target); ``query`` is the raw query
    string; ``at`` is ``time.monotonic()`` when the request was read.
    """

    method: str
    path: str
    query: str
    headers: RequestHeaders
    body: bytes
    at: float
    #: The route that served it (differs from ``path`` when aliased).
    route: str = ""
    #: The ``(host, port)`` of the client's socket (one per connection).
    client: tuple[str, int] = field(default=("", 0))

    @property
    def params(self) -> dict[str, str]:
        """The query parameters (the last value of a repeated name)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))
