"""The exit codes of ``connmgr get`` and ``connmgr check``, and how errors map to them.

A script can branch on them: ``connmgr check && sync`` syncs only when online;
``connmgr get URL`` exits 6 when the host name does not exist. The tables here
are what ``--help`` prints and what docs/cli.md lists (a test keeps them in step).

Example::

    exit_code_for(DNSError("no such host"))      # 6
    check_exit_code("CAPTIVE_PORTAL")            # 2
"""

from __future__ import annotations

__all__ = [
    "CHECK_EXIT_CODES",
    "EXIT_CODES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "check_exit_code",
    "exit_code_for",
    "status_exit_code",
]

#: Success.
EXIT_OK = 0
#: Bad arguments (``sysexits.h`` ``EX_USAGE``; not argparse's 2, which ``check`` uses
#: for "captive portal").
EXIT_USAGE = 64
#: Interrupted (Ctrl-C) or cancelled: 128 + SIGINT, as shells report it.
EXIT_INTERRUPTED = 130

#: ``connmgr get``'s exit code per error class, most specific first:
#: ``(class name in connmgr.errors, code, meaning)``. An HTTP error status that is
#: returned rather than raised (a 404, a 501) exits 4 (4xx) or 5 (5xx) too.
EXIT_CODES: tuple[tuple[str, int, str], ...] = (
    ("InvalidRequestError", 3, "the URL or a header is invalid"),
    ("ServerError", 5, "the server failed (5xx), retries exhausted"),
    ("HTTPStatusError", 4, "the server refused the request (4xx)"),
    ("DNSError", 6, "the host name could not be found"),
    ("TLSError", 9, "the secure connection failed (certificate, TLS)"),
    ("ConnectionFailedError", 7, "could not connect, or the connection broke"),
    ("RequestTimeoutError", 8, "timed out (connect, read or the total deadline)"),
    ("RateLimitError", 10, "rate limited by the server, longer than we may wait"),
    ("OfflineError", 11, "the network is unreachable (offline or captive portal)"),
    ("BackoffError", 12, "the server keeps failing: the circuit is open"),
    ("RequestCancelledError", EXIT_INTERRUPTED, "cancelled"),
    ("NetworkError", 1, "any other network error"),
)

#: ``connmgr check``'s exit codes: ``(NetworkStatus name, code, meaning)``.
CHECK_EXIT_CODES: tuple[tuple[str, int, str], ...] = (
    ("ONLINE", 0, "online: the internet is reachable"),
    ("OFFLINE", 1, "offline: no probe got through"),
    ("CAPTIVE_PORTAL", 2, "a captive portal (a network login page) is in the way"),
    ("LIMITED", 3, "a network, but no internet (names do not resolve, or HTTP fails)"),
    ("UNKNOWN", 4, "the probes could not tell"),
)


def exit_code_for(error: BaseException) -> int:
    """The exit code for ``error`` (see :data:`EXIT_CODES`); 1 for anything unknown.

    Example::

        exit_code_for(DNSError("no such host"))      # 6
    """
    names = {cls.__name__ for cls in type(error).__mro__}
    for name, code, _meaning in EXIT_CODES:
        if name in names:
            return code
    return 1


def status_exit_code(status: int) -> int:
    """The exit code for a returned HTTP status: 5 for 5xx, 4 for 4xx, else 0."""
    if status >= 500:
        return 5
    if status >= 400:
        return 4
    return EXIT_OK


def check_exit_code(status_name: str) -> int:
    """``connmgr check``'s exit code for a ``NetworkStatus`` name (see :data:`CHECK_EXIT_CODES`).

    By name, so statuses this version does not know (a newer monitor's) exit
    like ``UNKNOWN`` rather than breaking the command.
    """
    for name, code, _meaning in CHECK_EXIT_CODES:
        if name == status_name:
            return code
    return 4
