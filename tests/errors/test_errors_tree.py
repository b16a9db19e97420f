"""connmgr.errors.tree: the classes, their context and their plain words."""

from __future__ import annotations

import builtins
import doctest
import importlib
import pickle
import pkgutil
import re
from pathlib import Path

import pytest
import requests
from errors_helpers import (
    ERROR_CLASSES,
    response,
)

import connmgr.clock as clock_module
import connmgr.errors as errors_module
import connmgr.errors.tree as tree_module
from connmgr.clock import CancelToken
from connmgr.errors import (
    BackoffError,
    ConnectionFailedError,
    DeadlineExceededError,
    DNSError,
    ErrorMessageFormatter,
    HTTPStatusError,
    InvalidRequestError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
    TLSError,
    is_retryable,
    outcome_of,
)

# --------------------------------------------------------------------------- the tree


def _drawn_tree() -> dict[str, str]:
    """class name -> parent name, read from the tree module's drawing."""
    doc = tree_module.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        found = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Za-z_.]+)(?:\s+\(also .*\))?\s*$", line)
        if found is None or ("──" not in line and "RequestException" not in line):
            continue
        depth = len(line) - len(line.lstrip(" │├└─"))
        name = found.group(2).split(".")[-1]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_drawn_tree_is_the_real_tree() -> None:
    drawn = _drawn_tree()
    assert set(drawn) == {cls.__name__ for cls in ERROR_CLASSES}
    for cls in ERROR_CLASSES:
        assert cls.__bases__[0].__name__ == drawn[cls.__name__], cls


def test_the_also_notes_in_the_drawing_are_true() -> None:
    doc = tree_module.__doc__ or ""
    for name, also in re.findall(r"── (\w+)\s+\(also ([\w.]+)\)", doc):
        target = {"ValueError": ValueError}.get(also) or eval(also, {"requests": requests})
        assert issubclass(getattr(errors_module, name), target), (name, also)


def test_every_error_is_a_requests_exception_and_the_design_pairs_hold() -> None:
    for cls in ERROR_CLASSES:
        assert issubclass(cls, requests.RequestException)
        assert issubclass(cls, NetworkError)
    assert issubclass(ConnectionFailedError, requests.ConnectionError)
    assert issubclass(DNSError, ConnectionFailedError)
    assert issubclass(RequestTimeoutError, requests.Timeout)
    assert issubclass(DeadlineExceededError, RequestTimeoutError)
    assert issubclass(HTTPStatusError, requests.HTTPError)
    assert issubclass(ServerError, HTTPStatusError)
    assert issubclass(InvalidRequestError, ValueError)


def test_tls_error_is_requests_ssl_error_but_not_a_retryable_connection_failure() -> None:
    err = TLSError("handshake failed")
    assert isinstance(err, requests.exceptions.SSLError)
    assert isinstance(err, requests.ConnectionError)  # as with plain requests
    assert not isinstance(err, ConnectionFailedError)
    assert not is_retryable(err)


def test_the_docstring_examples_hold() -> None:
    attempted = 0
    for info in pkgutil.iter_modules(errors_module.__path__):
        module = importlib.import_module(f"connmgr.errors.{info.name}")
        results = doctest.testmod(module, extraglobs=vars(errors_module))
        assert results.failed == 0, info.name
        attempted += results.attempted
    assert attempted >= 10


def test_no_public_name_shadows_a_builtin() -> None:
    for name in errors_module.__all__:
        assert not hasattr(builtins, name), name


def test_every_public_name_is_documented() -> None:
    for name in errors_module.__all__:
        obj = getattr(errors_module, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name


def test_requests_handlers_still_catch_connmgr_errors() -> None:
    with pytest.raises(requests.Timeout):
        raise DeadlineExceededError("deadline")
    with pytest.raises(requests.ConnectionError):
        raise DNSError("nope")
    with pytest.raises(requests.HTTPError):
        raise ServerError(status=503)
    with pytest.raises(requests.RequestException):
        raise OfflineError()


# --------------------------------------------------------------------------- the error object


def test_defaults_of_a_bare_error() -> None:
    err = NetworkError()
    assert err.user_message == "A network error occurred."
    assert err.suggestion == "Check your connection and try again."
    assert (err.url, err.status, err.response, err.retry_after, err.operation) == (None,) * 5
    assert err.attempts == 0
    assert err.details == ""
    assert err.kind == "error"
    assert str(err) == "A network error occurred."


def test_context_is_redacted_and_str_is_one_short_line() -> None:
    err = NetworkError(
        "upload failed\nwith token=abc123 in it " + "x" * 1000,
        url="https://bob:hunter2@api.example.com/v1?api_key=abc123&q=techno",
        details="Authorization: Bearer abc123",
        attempts=3,
        operation="search",
    )
    line = str(err)
    assert "\n" not in line and len(line) <= 400
    assert "abc123" not in line and "hunter2" not in line
    assert err.url == "https://***@api.example.com/v1?api_key=***&q=techno"
    assert err.details == "Authorization: ***"
    assert err.host == "api.example.com"
    short = NetworkError("boom", url="https://api.example.com/x", attempts=3, operation="search")
    assert str(short) == "boom (https://api.example.com/x; 3 attempts; operation search)"


def test_user_message_and_suggestion_can_be_overridden_and_are_redacted() -> None:
    err = ConnectionFailedError(user_message="Sync failed for token=abc123.", suggestion="Retry.")
    assert err.user_message == "Sync failed for token=***."
    assert err.suggestion == "Retry."
    err.user_message = None  # back to the default
    assert err.user_message == "Could not connect to the server."


def test_status_comes_from_the_response() -> None:
    err = HTTPStatusError("HTTP 404", response=response(404))
    assert err.status == 404
    assert err.response is not None and err.response.status_code == 404
    assert err.url == "https://api.example.com/v1/search?q=x"


def test_backoff_error_retry_in_is_retry_after() -> None:
    err = BackoffError("circuit open", retry_in=8.2, url="https://api.example.com/x")
    assert err.retry_in == err.retry_after == pytest.approx(8.2)
    assert err.user_message == (
        "Requests to api.example.com are paused because it failed several times in a row."
    )
    assert err.suggestion == "Wait 9 seconds, then try again."
    assert err.request_sent is False


def test_rate_limit_wording_in_a_dialog_and_in_a_retry_banner() -> None:
    err = RateLimitError(retry_after=12)
    assert err.user_message == "The server asked us to slow down."
    assert ErrorMessageFormatter.format_error(err) == (
        "The server asked us to slow down. Wait 12 seconds, then try again."
    )
    assert ErrorMessageFormatter.format_retry(err, 12) == (
        "The server asked us to slow down. Trying again in 12 seconds."
    )
    assert ErrorMessageFormatter.format_retry(err, 1, attempt=2, max_attempts=4) == (
        "The server asked us to slow down. Trying again in 1 second (attempt 2 of 4)."
    )
    assert ErrorMessageFormatter().format_error(RateLimitError()) == (
        "The server asked us to slow down. Wait a moment, then try again."
    )


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.2, "1 second"),
        (1, "1 second"),
        (11.2, "12 seconds"),
        (119, "119 seconds"),
        (150, "3 minutes"),
        (7200, "2 hours"),
        (86400, "24 hours"),
    ],
)
def test_waits_are_worded_rounding_up(seconds: float, words: str) -> None:
    assert RateLimitError(retry_after=seconds).suggestion == f"Wait {words}, then try again."


@pytest.mark.parametrize("seconds", [86401, 3 * 86400, 999999999])
def test_past_a_day_the_words_are_try_again_later(seconds: float) -> None:
    assert RateLimitError(retry_after=seconds).suggestion == "Try again later."
    assert "day" not in ServerError(status=503, retry_after=seconds).suggestion


def test_gate_rate_limit_was_never_sent_but_a_429_was() -> None:
    assert RateLimitError(retry_after=3).request_sent is False
    assert RateLimitError("HTTP 429", response=response(429)).request_sent is True


def test_deadline_message_names_the_budget() -> None:
    err = DeadlineExceededError("deadline", timeout=60)
    assert err.user_message == "The request was stopped because it took longer than 60 seconds."
    assert DeadlineExceededError().user_message == "The request took too long and was stopped."
    assert not is_retryable(err)


def test_call_sites_of_other_modules_keep_working() -> None:
    # The exact shapes used by transport.py, timeouts.py and clock.py.
    err = DeadlineExceededError(
        "the request did not finish within its 3 s deadline (body, 3.001 s elapsed)",
        url="http://127.0.0.1:9/drip",
        details="total deadline 3 s exceeded body; last error: ReadTimeoutError()",
    )
    assert err.url == "http://127.0.0.1:9/drip" and "3 s deadline" in str(err)
    cancelled = RequestCancelledError("user pressed stop", url="http://127.0.0.1:9/x")
    assert cancelled.user_message == "The request was cancelled."
    assert outcome_of(cancelled) == "fatal" and not is_retryable(cancelled)


def test_errors_survive_pickling_with_their_context() -> None:
    err = RateLimitError("HTTP 429", retry_after=3, url="https://x.test/?token=t", attempts=2)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is RateLimitError
    assert (copy.retry_after, copy.url, copy.attempts) == (3.0, "https://x.test/?token=***", 2)
    assert str(copy) == str(err)
    dns = pickle.loads(pickle.dumps(DNSError("x", temporary=True)))
    assert dns.temporary is True


def test_every_class_has_plain_words_defaults() -> None:
    jargon = re.compile(r"errno|urllib3|requests\.|Exception|Traceback|socket|None\b|Error\b")
    for cls in ERROR_CLASSES:
        err = cls()
        for text in (err.user_message, err.suggestion):
            assert text and text.endswith("."), (cls, text)
            assert not jargon.search(text), (cls, text)


def test_from_token_carries_the_reason_and_the_context_and_does_not_raise() -> None:
    token = CancelToken()
    token.cancel("the user closed the window")
    err = RequestCancelledError.from_token(token, url="https://u:p@x.test/a?token=t", attempts=2)
    assert type(err) is RequestCancelledError and err.kind == "cancelled"
    assert err.url == "https://***@x.test/a?token=***" and err.attempts == 2
    assert str(err) == "the user closed the window (https://***@x.test/a?token=***; 2 attempts)"
    assert err.user_message == "The request was cancelled."
    assert not is_retryable(err)
    untouched = CancelToken()  # not cancelled: no reason, the generic message
    assert str(RequestCancelledError.from_token(untouched)) == "cancelled"


def test_clock_imports_nothing_of_connmgr() -> None:
    import ast

    source = Path(clock_module.__file__).read_text(encoding="utf-8")
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("connmgr")]
    assert not hasattr(CancelToken, "raise_if_cancelled")
