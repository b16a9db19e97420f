"""What an answer decides for an entry (pure: built requests.Response objects)."""

from __future__ import annotations

import pytest
import requests

from connmgr.errors import (
    BackoffError,
    ConnectionFailedError,
    InvalidRequestError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
)
from connmgr.outbox.verdict import judge_error, judge_response


def response(status, body=b"", headers=None):
    r = requests.Response()
    r.status_code = status
    r._content = body
    r.headers.update(headers or {})
    r.encoding = "utf-8"
    return r


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (301, "failed"),
        (307, "failed"),
        (400, "failed"),
        (404, "failed"),
        (422, "failed"),
        (499, "failed"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (501, "retry"),
        (599, "retry"),
        (999, "retry"),
    ],
)
def test_the_status_decides(status, action):
    assert judge_response(response(status)).action == action


def test_a_failure_keeps_a_short_redacted_snippet():
    body = b'{"error": "bad track", "access_token": "s3cret"}\n' + b"x" * 5000
    verdict = judge_response(response(422, body))
    assert verdict.status == 422 and "bad track" in verdict.reason
    assert "s3cret" not in verdict.reason
    assert len(verdict.reason) < 220 and "\n" not in verdict.reason


def test_garbage_bodies_do_not_break_the_reason():
    verdict = judge_response(response(400, b"\xff\xfe\x00garbage"))
    assert verdict.action == "failed" and verdict.reason.startswith("HTTP 400")


def test_a_redirect_names_where_without_secrets():
    verdict = judge_response(response(302, headers={"Location": "https://x.test/?token=abc"}))
    assert "token=***" in verdict.reason and "abc" not in verdict.reason


def test_retry_after_is_read_from_the_answer():
    assert judge_response(response(503, headers={"Retry-After": "42"})).retry_after == 42.0
    assert judge_response(response(503, headers={"Retry-After": "soon"})).retry_after is None


def test_errors_map_to_actions():
    assert judge_error(RequestCancelledError("x")).action == "interrupted"
    offline = judge_error(OfflineError("x"))
    assert offline.action == "gated" and offline.reached is False
    backoff = judge_error(BackoffError("x", retry_in=7.0))
    assert backoff.action == "gated" and backoff.retry_after == 7.0
    gate = judge_error(RateLimitError("x", retry_after=3.0))
    assert gate.action == "gated" and gate.retry_after == 3.0
    limited = judge_error(RateLimitError("x", response=response(403), retry_after=9.0))
    assert limited.action == "retry" and limited.status == 403 and limited.retry_after == 9.0
    server = judge_error(ServerError("x", response=response(503, headers={"Retry-After": "5"})))
    assert server.action == "retry" and server.status == 503 and server.retry_after == 5.0
    refused = judge_error(ConnectionFailedError("refused", kind="refused"))
    assert refused.action == "retry" and refused.reached is False
    timeout = judge_error(RequestTimeoutError("read timed out", kind="read_timeout"))
    assert timeout.action == "retry" and timeout.reached is True
    assert judge_error(InvalidRequestError("bad url")).action == "failed"


def test_error_reasons_are_redacted():
    verdict = judge_error(ConnectionFailedError("boom https://u:pw@x.test/?token=t", kind="reset"))
    assert "pw" not in verdict.reason and "token=t" not in verdict.reason
