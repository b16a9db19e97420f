"""The ``connmgr`` command's option values: timeouts, probes, headers, parsed in words.

Each parser raises :class:`ValueError` with a sentence that says what the
option takes, which the command prints as its usage error.

Example::

    parse_timeout("3,10,20")      # (3.0, 10.0, 20.0)
    parse_probe("127.0.0.1:8080")  # TcpProbe("127.0.0.1", 8080)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connmgr.network import Probe

__all__ = ["parse_header", "parse_probe", "parse_timeout"]


def parse_timeout(text: str) -> tuple[float, float, float | None]:
    """``"C,R,T"`` → ``(connect, read, total)`` seconds; ``T`` may be ``none``; ``"C,R"`` too.

    Raises :class:`ValueError` in words for anything else.

    Example::

        parse_timeout("3,10,20")      # (3.0, 10.0, 20.0)
        parse_timeout("3,10,none")    # (3.0, 10.0, None)
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise ValueError(
            f"--timeout takes CONNECT,READ,TOTAL in seconds, e.g. 5,30,60; got {text!r}"
        )
    try:
        connect, read = float(parts[0]), float(parts[1])
        total = None if len(parts) == 2 or parts[2].lower() == "none" else float(parts[2])
    except ValueError:
        raise ValueError(
            f"--timeout takes numbers of seconds, CONNECT,READ,TOTAL (e.g. 5,30,60); got {text!r}"
        ) from None
    return connect, read, total


def parse_probe(text: str, *, expect_status: int = 204) -> Probe:
    """``HOST:PORT`` → a :class:`~connmgr.network.TcpProbe`; ``http(s)://…`` → an ``HttpProbe``.

    IPv6 addresses go in brackets: ``[::1]:443``.

    Example::

        parse_probe("127.0.0.1:8080")                          # TcpProbe("127.0.0.1", 8080)
        parse_probe("http://127.0.0.1:8080/generate_204")      # HttpProbe(...)
    """
    from connmgr.network import HttpProbe, TcpProbe

    text = text.strip()
    if "://" in text:
        return HttpProbe(text, expect_status=expect_status)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--probe takes HOST:PORT or an http(s):// URL, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return TcpProbe(host, int(port))


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` -> ``("Name", "value")``; :class:`ValueError` for anything else."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"-H takes 'Name: value', got {text!r}")
    return name.strip(), value.strip()
