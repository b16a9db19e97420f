"""The words ``connmgr`` prints for a failure: ``error: ...`` and a suggestion.

An error's ``user_message`` is written for any app; the command knows more: the
exact host and port it tried, what each attempt met, and what the network
monitor says now. :func:`describe_failure` picks the words from the error's
class and ``kind`` and the monitor's status, so that

- a refused connection reads "Could not connect to 127.0.0.1:1 (connection
  refused)": the host answered, so the network is there;
- "no network" is said only when the monitor says the network is offline;
- a limited network and a captive portal get words of their own.

Statuses are matched by name (``"OFFLINE"``, ``"LIMITED"``, ...), so a monitor
that knows more statuses than this module still gets sensible words.

Example::

    words = describe_failure(error, url="http://127.0.0.1:1/", network="ONLINE")
    fail(term, words.message, words.suggestion)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from connmgr.frozen import explain_frozen
from connmgr.terminal import Terminal

__all__ = ["FailureWords", "describe_failure", "fail", "host_and_port"]


@explain_frozen
@dataclass(frozen=True, slots=True)
class FailureWords:
    """What to print for a failure, and which error it is about (for the exit code)."""

    error: BaseException
    message: str
    suggestion: str


def fail(term: Terminal, message: str, suggestion: str = "") -> None:
    """Print ``error: message`` (bold red on a terminal) and the suggestion under it."""
    term.line(f"error: {message}", style="bold red")
    if suggestion:
        term.line(f"  {suggestion}")


def host_and_port(url: str) -> str:
    """``"http://127.0.0.1:1/x"`` -> ``"127.0.0.1:1"``; the scheme's port when none is given.

    IPv6 addresses keep their brackets (``"[::1]:8080"``); a URL that cannot be
    read gives back what it can (its network location, else the URL).
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return url
    if not host:
        return parts.netloc or url
    shown = f"[{host}]" if ":" in host else host
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{shown}:{port}" if port is not None else shown


def _refused(error: BaseException) -> bool:
    return (
        type(error).__name__ != "DNSError"
        and getattr(error, "kind", None) == "refused"
        and any(cls.__name__ == "ConnectionFailedError" for cls in type(error).__mro__)
    )


def describe_failure(
    error: BaseException,
    *,
    url: str,
    network: str | None,
    earlier: Sequence[BaseException] = (),
) -> FailureWords:
    """The words for ``error``, the failure of a request to ``url``.

    ``network`` is the monitor's status name now (``None``: not known);
    ``earlier`` are the errors of the attempts before the last one.
    """
    where = host_and_port(url)
    refusals = [e for e in (*earlier, error) if _refused(e)]
    refused = refusals[-1] if refusals else None
    is_offline = any(cls.__name__ == "OfflineError" for cls in type(error).__mro__)
    if refused is not None and (error is refused or is_offline):
        # A refusal is an answer from the host: the network worked, the port is closed.
        return FailureWords(
            refused,
            f"Could not connect to {where} (connection refused).",
            "Nothing accepted the connection there: check that the server is running "
            "and that the port is right.",
        )
    if is_offline:
        if network == "LIMITED":
            return FailureWords(
                error,
                "Not sent: this network does not reach the internet.",
                "The Wi-Fi or cable is connected, but names do not resolve or web "
                "requests fail. Check the router, VPN or firewall.",
            )
        if network == "CAPTIVE_PORTAL":
            return FailureWords(
                error,
                "Not sent: a network login page (captive portal) is in the way.",
                "Open a browser and sign in to the network (hotel, airport, café Wi-Fi).",
            )
        if network != "OFFLINE":
            status = (network or "unknown").lower().replace("_", " ")
            return FailureWords(
                error,
                "Not sent: the network was unreachable a moment ago "
                f"(the network monitor now says: {status}).",
                "Try again.",
            )
    message = getattr(error, "user_message", None) or str(error) or type(error).__name__
    suggestion = getattr(error, "suggestion", None) or ""
    return FailureWords(error, message, suggestion)
