"""The connectivity-check and captive-portal web servers of NetLab.

Two roles share one switch (:class:`PortalSwitch`):

- ``"check"``: the vendor's connectivity check. ``/generate_204`` answers
  ``204 No Content`` (Android, ChromeOS), ``/hotspot-detect.html`` a ``200``
  page containing ``Success`` (Apple); anything else is ``404``. While the
  portal is on, every path gets the portal's answer instead, as a portal
  that intercepts HTTP does.
- ``"portal"``: the portal itself. Every path answers the login page (``200``
  HTML), or, in redirect mode, a ``302`` to ``http://portal.test/login``,
  whose own answer is the page.

The servers are created on the calling thread, so NetLab creates them on a
thread inside the namespace where they should listen.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["PORTAL_PAGE", "PortalSwitch", "start_lab_http"]

#: What the portal answers: a sign-in form, as hotel and airport portals show.
PORTAL_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in to Lab Wi-Fi</title></head>\n"
    b"<body><h1>Lab Wi-Fi</h1><p>Sign in to use the internet.</p>\n"
    b'<form method="post" action="/login"><input name="room">'
    b'<button type="submit">Connect</button></form></body></html>\n'
)
_LOGIN_URL = "http://portal.test/login"
_APPLE_SUCCESS = b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>\n"


class PortalSwitch:
    """Whether the portal is on, and whether it redirects (``302``) or shows its page."""

    def __init__(self) -> None:
        self.on = False
        self.redirect = False
        self.hits = 0
        self._lock = threading.Lock()

    def set(self, on: bool, redirect: bool) -> None:
        """Turn the portal on or off, answering with a redirect or the page."""
        with self._lock:
            self.on, self.redirect = on, redirect

    def count(self) -> None:
        """Count one request the portal answered."""
        with self._lock:
            self.hits += 1


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        switch = self.server.switch
        path = self.path.split("?", 1)[0]
        if self.server.role == "portal" or switch.on:
            switch.count()
            if switch.redirect and not (self.server.role == "portal" and path == "/login"):
                self._reply(302, b"", [("Location", _LOGIN_URL)])
            else:
                self._reply(200, PORTAL_PAGE, [("Content-Type", "text/html; charset=utf-8")])
        elif path == "/generate_204":
            self._reply(204, b"")
        elif path == "/hotspot-detect.html":
            self._reply(200, _APPLE_SUCCESS, [("Content-Type", "text/html")])
        else:
            self._reply(404, b"not found\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self.do_GET()

    def _reply(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        # Drain a request body, so keep-alive stays in step.
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) > 0:
            self.rfile.read(int(length))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status != 204:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests read the hit counters, not a log


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], role: str, switch: PortalSwitch) -> None:
        self.role = role
        self.switch = switch
        super().__init__(address, _Handler)


def start_lab_http(host: str, port: int, role: str, switch: PortalSwitch) -> _Server:
    """Listen on ``host:port`` (created on the calling thread) and serve on a daemon thread.

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    if role not in ("check", "portal"):
        raise ValueError(f"role must be 'check' or 'portal', got {role!r}")
    server = _Server((host, port), role, switch)
    threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"connmgr-lab-{role}",
        daemon=True,
    ).start()
    return server
