"""connmgr.errors.formatter: dialog lines, retry banners and the Details box."""

from __future__ import annotations

import requests
from errors_helpers import (
    closed_port,
    failure,
    response,
)

from connmgr.errors import (
    ErrorMessageFormatter,
    ServerError,
    classify_error,
)
from connmgr.testing import FaultServer

# --------------------------------------------------------------------------- formatter


def test_format_error_and_details_accept_any_exception() -> None:
    port = closed_port()
    exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/a?password=pw123", timeout=1))
    text = ErrorMessageFormatter.format_error(exc)
    assert text == (
        f"Could not connect to 127.0.0.1:{port}: the connection was refused. "
        "The server may be down or restarting. Try again in a moment."
    )
    details = ErrorMessageFormatter.format_details(exc)
    lines = details.splitlines()
    assert lines[0] == "Error: ConnectionFailedError (refused)"
    assert f"Request: GET http://127.0.0.1:{port}/a?password=***" in lines
    assert "Request sent: no (it never left this machine)" in lines
    assert "Details:" in lines
    assert any("ConnectionRefusedError" in line for line in lines)
    assert "pw123" not in details


def test_format_details_redacts_request_headers(server: FaultServer) -> None:
    r = requests.get(
        server.url_for("/status/401"),
        headers={"Authorization": "Bearer tok-777", "X-Trace": "t1"},
        cookies={"session": "cookie-888"},
        timeout=2,
    )
    err = classify_error(failure(r.raise_for_status), operation="search")
    details = ErrorMessageFormatter.format_details(err)
    assert "HTTP status: 401 Unauthorized" in details
    assert "Operation: search" in details
    assert "Authorization: ***" in details and "X-Trace: t1" in details
    assert "tok-777" not in details and "cookie-888" not in details


def test_format_retry_now() -> None:
    assert ErrorMessageFormatter.format_retry(ServerError(status=503), 0) == (
        "The server is temporarily unavailable (busy or down for maintenance). Trying again now."
    )


def test_format_error_of_a_response() -> None:
    assert ErrorMessageFormatter.format_error(response(404)) == (
        "The page or item was not found on the server. "
        "Check the address or search terms; it may have been moved or removed."
    )
