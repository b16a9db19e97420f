"""No secret from a URL reaches a log record, urllib3's included.

urllib3 logs every request at DEBUG with its full target
(``"GET /x?token=... HTTP/1.1" 200``); connmgr's adapter puts a redacting
filter on urllib3's loggers.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from connmgr.errors import NetworkError
from connmgr.testing.server import FaultServer
from connmgr.timeouts import TimeoutConfig
from connmgr.transport import create_session

StartServer = Callable[..., Any]  # conftest's scripted_server factory

SECRETS = {"token": "s3cr3tT0KEN", "api_key": "abcKEY123"}
CONFIG = TimeoutConfig(connect=2, read=5, total=10)


def assert_no_secret(records: list[logging.LogRecord]) -> None:
    formatter = logging.Formatter("%(name)s %(message)s")
    for record in records:
        for text in (record.getMessage(), formatter.format(record)):
            for secret in SECRETS.values():
                assert secret not in text, (record.name, text)


def test_urllib3_request_lines_are_redacted_at_debug(
    fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger, as an app debugging would
    with create_session(CONFIG) as session:
        session.get(fault_server.url_for("/ok"), params={"q": "techno", **SECRETS})
        session.get(fault_server.url_for("/missing"), params=SECRETS)
        target = fault_server.url_for("/ok?" + "&".join(f"{k}={v}" for k, v in SECRETS.items()))
        session.get(fault_server.url_for("/redirect"), params={"to": target})
    lines = [r for r in caplog.records if r.name.startswith("urllib3")]
    assert any('"GET /ok?' in r.getMessage() for r in lines)  # urllib3 did log them
    assert any("q=techno" in r.getMessage() for r in lines)  # harmless values stay readable
    assert_no_secret(caplog.records)


def test_a_urllib3_warning_with_a_traceback_is_redacted(
    scripted_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A header line without a colon: urllib3 warns "Failed to parse headers
    # (url=...)" with the full URL and a traceback.
    def handler(conn: socket.socket, head: bytes, body: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nbroken header line\r\nContent-Length: 2\r\n\r\nok")
        return False

    server = scripted_server(handler)
    caplog.set_level(logging.DEBUG)
    # Whether the request fails does not matter here: the log does.
    with create_session(CONFIG) as session, contextlib.suppress(NetworkError):
        session.get(server.url + "/x", params=SECRETS)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("Failed to parse headers" in r.getMessage() for r in warnings)
    assert_no_secret(caplog.records)


def test_the_filter_is_installed_once_per_logger(fault_server: FaultServer) -> None:
    for _ in range(3):
        with create_session(CONFIG) as session:
            session.get(fault_server.url_for("/ok"))
    for name in ("urllib3", "urllib3.connectionpool", "urllib3.connection"):
        kinds = [type(f).__name__ for f in logging.getLogger(name).filters]
        assert kinds.count("_RedactingFilter") == 1, (name, kinds)
