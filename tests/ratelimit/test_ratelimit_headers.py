"""Rate-limit header parsing: every dialect, epoch-vs-delta resets, dates, garbage."""

from __future__ import annotations

import dataclasses
import email.utils
import logging

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from connmgr.ratelimit import (
    MAX_SANE_DELAY,
    RateLimitInfo,
    RateLimitParser,
    parse_rate_limit_headers,
    parse_retry_after,
)
from connmgr.ratelimit import headers as headers_module

NOW = 1_700_000_000.0  # wall-clock epoch seconds used as "now" throughout
YEAR = 366 * 86400


def http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


# -- Retry-After -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        (http_date(NOW + 90), 90.0),
        (http_date(NOW - 90), 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),  # the RFC's example: long past
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # obsolete RFC 850 form
        ("Sun Nov  6 08:49:37 1994", 0.0),  # obsolete asctime form
    ],
)
def test_parse_retry_after_reads_both_forms(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected)


def test_parse_retry_after_date_uses_now() -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    epoch = 1445412480.0
    assert parse_retry_after(date, now=epoch - 30) == 30.0
    assert parse_retry_after(date, now=epoch + 1) == 0.0


@pytest.mark.parametrize(
    "value", ["", "   ", "soon", "1e5", "inf", "nan", "12abc", "Mon, 99 Foo", "1" * 400]
)
def test_parse_retry_after_garbage_is_none_and_logged(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="connmgr.ratelimit"):
        assert parse_retry_after(value, now=NOW) is None
    assert caplog.records, "a debug line explains the ignored value"


def test_parse_retry_after_non_string_is_none() -> None:
    assert parse_retry_after(None, now=NOW) is None  # type: ignore[arg-type]
    assert parse_retry_after(5, now=NOW) is None  # type: ignore[arg-type]


# -- X-RateLimit-* and X-Rate-Limit-* ------------------------------------------------


def test_x_ratelimit_delta_reset() -> None:
    info = parse_rate_limit_headers(
        {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "30"},
        now=NOW,
    )
    assert info == RateLimitInfo(limit=60, remaining=12, reset_after=30.0, dialect="x-ratelimit")


def test_x_ratelimit_epoch_reset_github_style() -> None:
    info = parse_rate_limit_headers(
        {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": str(int(NOW) + 1800),
            "x-ratelimit-used": "1",
            "x-ratelimit-resource": "core",
        },
        now=NOW,
    )
    assert info is not None
    assert (info.limit, info.remaining, info.reset_after) == (5000, 4999, 1800.0)


def test_x_ratelimit_epoch_in_milliseconds() -> None:
    info = parse_rate_limit_headers(
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int((NOW + 12.5) * 1000))},
        now=NOW,
    )
    assert info is not None
    assert info.reset_after == pytest.approx(12.5)


def test_x_ratelimit_epoch_in_the_past_is_zero() -> None:
    info = parse_rate_limit_headers(
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) - 50)}, now=NOW
    )
    assert info is not None
    assert info.reset_after == 0.0


def test_x_ratelimit_fractional_delta_reset() -> None:
    info = parse_rate_limit_headers({"X-RateLimit-Reset": "0.049"}, now=NOW)
    assert info is not None
    assert info.reset_after == pytest.approx(0.049)


def test_x_ratelimit_reset_as_http_date() -> None:
    info = parse_rate_limit_headers({"X-RateLimit-Reset": http_date(NOW + 60)}, now=NOW)
    assert info is not None
    assert info.reset_after == pytest.approx(60.0)


def test_x_ratelimit_reset_after_is_preferred_as_a_delta() -> None:
    info = parse_rate_limit_headers(
        {
            "X-RateLimit-Remaining": "1",
            "X-RateLimit-Reset": str(NOW + 100),
            "X-RateLimit-Reset-After": "2.5",
        },
        now=NOW,
    )
    assert info is not None
    assert info.reset_after == 2.5


def test_x_ratelimit_used_gives_remaining() -> None:
    info = parse_rate_limit_headers({"X-RateLimit-Limit": "10", "X-RateLimit-Used": "7"})
    assert info is not None
    assert info.remaining == 3


def test_x_rate_limit_spelling() -> None:
    info = parse_rate_limit_headers(
        {
            "x-rate-limit-limit": "900",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(NOW) + 600),
        },
        now=NOW,
    )
    assert info == RateLimitInfo(limit=900, remaining=0, reset_after=600.0, dialect="x-rate-limit")
    assert info.exhausted


def test_names_are_case_insensitive() -> None:
    variants = [
        {"X-RATELIMIT-REMAINING": "3", "x-ratelimit-reset": "9"},
        {"x-RateLimit-Remaining": "3", "X-Ratelimit-Reset": "9"},
        [("x-ratelimit-remaining", "3"), ("X-RATELIMIT-RESET", "9")],
    ]
    for headers in variants:
        info = parse_rate_limit_headers(headers, now=NOW)
        assert info is not None
        assert (info.remaining, info.reset_after) == (3, 9.0), headers


def test_requests_case_insensitive_dict() -> None:
    headers = requests.structures.CaseInsensitiveDict(
        {"X-RateLimit-Remaining": "4", "Retry-After": "2"}
    )
    info = parse_rate_limit_headers(headers, now=NOW)
    assert info is not None
    assert (info.remaining, info.retry_after) == (4, 2.0)


def test_every_name_the_parsers_read_passes_the_prefix_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Headers without a name starting with one of the prefixes are not parsed at all,
    # so a parser reading a name outside them would silently never see it.
    read: set[str] = set()

    class Recording(dict[str, str]):
        def get(self, key, default=None):  # type: ignore[override]
            read.add(key)
            return super().get(key, default)

    real = headers_module._header_map
    monkeypatch.setattr(headers_module, "_header_map", lambda h: Recording(real(h)))
    # Malformed values, so every dialect is tried and falls through to the next.
    everything = {
        prefix + suffix: "?"
        for prefix in headers_module._RATE_LIMIT_PREFIXES
        for suffix in ("", "-limit", "-remaining", "-reset", "-reset-after", "-used", "-policy")
    }
    parse_rate_limit_headers(everything, now=NOW)
    assert read and all(name.startswith(headers_module._RATE_LIMIT_PREFIXES) for name in read)


def test_requests_headers_without_ours_are_not_parsed() -> None:
    headers = requests.structures.CaseInsensitiveDict(
        {"Content-Type": "text/plain", "X-RateLimit-Resource": "search"}
    )
    assert parse_rate_limit_headers(headers, now=NOW) is None


# -- IETF RateLimit-* (drafts up to 06) --------------------------------------------


def test_ietf_fields() -> None:
    info = parse_rate_limit_headers(
        {"RateLimit-Limit": "100", "RateLimit-Remaining": "50", "RateLimit-Reset": "30"}, now=NOW
    )
    assert info == RateLimitInfo(
        limit=100, remaining=50, reset_after=30.0, dialect="ratelimit-fields"
    )


def test_ietf_fields_limit_with_quota_policies() -> None:
    info = parse_rate_limit_headers(
        {
            "ratelimit-limit": "10, 10;w=1, 50;w=60",
            "ratelimit-remaining": "9",
            "ratelimit-reset": "1",
        },
        now=NOW,
    )
    assert info is not None
    assert (info.limit, info.remaining, info.reset_after, info.window) == (10, 9, 1.0, 1.0)


def test_ietf_fields_win_over_x_ratelimit() -> None:
    info = parse_rate_limit_headers(
        {"RateLimit-Remaining": "1", "X-RateLimit-Remaining": "99", "RateLimit-Reset": "5"}
    )
    assert info is not None
    assert (info.remaining, info.dialect) == (1, "ratelimit-fields")


# -- structured RateLimit / RateLimit-Policy (draft 08 and later) ------------------


def test_structured_with_policy() -> None:
    info = parse_rate_limit_headers(
        {"RateLimit": '"default";r=50;t=30', "RateLimit-Policy": '"default";q=100;w=60'}
    )
    assert info == RateLimitInfo(
        limit=100,
        remaining=50,
        reset_after=30.0,
        window=60.0,
        policy="default",
        dialect="ratelimit",
    )


def test_structured_without_policy_or_window() -> None:
    info = parse_rate_limit_headers({"ratelimit": '"default";r=999;pk=:dHJpYWwxMjEzMjM=:'})
    assert info is not None
    assert (info.limit, info.remaining, info.reset_after) == (None, 999, None)


def test_structured_token_policy_name() -> None:
    info = parse_rate_limit_headers({"RateLimit": "burst;r=3;t=2"})
    assert info is not None
    assert (info.policy, info.remaining, info.reset_after) == ("burst", 3, 2.0)


def test_structured_picks_the_most_restrictive_policy() -> None:
    headers = {
        "RateLimit": '"permin";r=40;t=20, "perhr";r=100;t=3000',
        "RateLimit-Policy": '"permin";q=50;w=60, "perhr";q=1000;w=3600',
    }
    info = parse_rate_limit_headers(headers)
    assert info is not None
    # 40 over 20 s is 2/s; 100 over 3000 s is 0.033/s: the hourly one binds.
    assert (info.policy, info.remaining, info.reset_after, info.limit, info.window) == (
        "perhr",
        100,
        3000.0,
        1000,
        3600.0,
    )


def test_structured_exhausted_policy_wins() -> None:
    info = parse_rate_limit_headers({"RateLimit": '"a";r=500;t=1, "b";r=0;t=7'})
    assert info is not None
    assert (info.policy, info.remaining, info.reset_after) == ("b", 0, 7.0)


def test_structured_split_over_several_fields() -> None:
    info = parse_rate_limit_headers([("RateLimit", '"a";r=500;t=1'), ("RateLimit", '"b";r=2;t=10')])
    assert info is not None
    assert info.policy == "b"


def test_structured_uppercase_parameters_are_tolerated() -> None:
    info = parse_rate_limit_headers({"RateLimit": '"default";R=5;T=10'})
    assert info is not None
    assert (info.remaining, info.reset_after) == (5, 10.0)


@pytest.mark.parametrize(
    "value",
    [
        '"default";r=-5;t=30',  # negative quota
        '"default";r=5.5;t=3',  # r must be an Integer
        '"default";t=30',  # no r
        '"default";r="5"',  # r must be an Integer, not a String
        '"default;r=5',  # unterminated string
        '"default";r=50;t=30,',  # trailing comma
        "",
    ],
)
def test_structured_malformed_is_ignored(value: str) -> None:
    assert parse_rate_limit_headers({"RateLimit": value}) is None


def test_structured_malformed_falls_back_to_other_dialects() -> None:
    info = parse_rate_limit_headers({"RateLimit": "garbage!!", "X-RateLimit-Remaining": "3"})
    assert info is not None
    assert (info.remaining, info.dialect) == (3, "x-ratelimit")


def test_draft07_dictionary_form() -> None:
    info = parse_rate_limit_headers(
        {"RateLimit": "limit=100, remaining=50, reset=5", "RateLimit-Policy": "100;w=60"}
    )
    assert info == RateLimitInfo(
        limit=100, remaining=50, reset_after=5.0, dialect="ratelimit-draft07"
    )


# -- Retry-After alongside quota headers --------------------------------------------


def test_retry_after_only() -> None:
    info = parse_rate_limit_headers({"Retry-After": "7"})
    assert info == RateLimitInfo(retry_after=7.0, dialect="retry-after")
    assert not info.has_quota


def test_retry_after_http_date_with_quota() -> None:
    info = parse_rate_limit_headers(
        {
            "Retry-After": http_date(NOW + 20),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "15",
        },
        now=NOW,
    )
    assert info is not None
    assert (info.retry_after, info.remaining, info.reset_after) == (20.0, 0, 15.0)
    assert info.dialect == "x-ratelimit"


def test_no_rate_limit_headers_is_none() -> None:
    assert parse_rate_limit_headers({"Content-Type": "text/html"}) is None
    assert parse_rate_limit_headers({}) is None
    assert parse_rate_limit_headers([]) is None


# -- malformed, negative, absurd ------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "10"}, (None, 10.0)),
        ({"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "10"}, (None, 10.0)),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "-10"}, (5, None)),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "nan"}, (5, None)),
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "tomorrow"}, (5, None)),
        ({"X-RateLimit-Remaining": "1e30", "X-RateLimit-Reset": "10"}, (None, 10.0)),
        ({"X-RateLimit-Remaining": "inf", "X-RateLimit-Reset": "10"}, (None, 10.0)),
        # 500 million seconds is neither a sane delta (16 years) nor a timestamp.
        ({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "500000000"}, (5, None)),
        # A timestamp two years ahead is absurd too.
        (
            {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": str(NOW + 2 * 366 * 86400)},
            (5, None),
        ),
        ({"X-RateLimit-Remaining": "5.9"}, (5, None)),
        ({"X-RateLimit-Remaining": "5, 5"}, (5, None)),  # a repeated header, joined
    ],
)
def test_bad_values_are_ignored_not_raised(
    headers: dict[str, str], expected: tuple[int | None, float | None]
) -> None:
    info = parse_rate_limit_headers(headers, now=NOW)
    assert info is not None
    assert (info.remaining, info.reset_after) == expected


def test_absurd_retry_after_is_read_as_a_year(caplog: pytest.LogCaptureFixture) -> None:
    # Still the server's word ("not for a very long time"): the caller's
    # max_retry_after makes it a long pause, never a burst of retries.
    with caplog.at_level(logging.DEBUG, logger="connmgr.ratelimit"):
        info = parse_rate_limit_headers({"Retry-After": str(MAX_SANE_DELAY * 30)})
    assert info is not None and info.retry_after == MAX_SANE_DELAY
    assert any("over a year" in r.getMessage() for r in caplog.records)


def test_bytes_values_and_junk_pairs() -> None:
    info = parse_rate_limit_headers(
        [("X-RateLimit-Remaining", b"2"), (b"junk", "1"), ("x", None), "notapair"]  # type: ignore[list-item]
    )
    assert info is not None
    assert info.remaining == 2


_names = st.sampled_from(
    [
        "Retry-After",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-RateLimit-Reset-After",
        "X-RateLimit-Used",
        "x-rate-limit-remaining",
        "x-rate-limit-reset",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "RateLimit",
        "RateLimit-Policy",
        "ratelimit",
    ]
)
_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.from_regex(r'"[a-z]{0,4}";r=-?[0-9]{0,18};t=-?[0-9.]{0,6}(, ?)?', fullmatch=True),
    st.from_regex(r"(limit|remaining|reset)=[0-9a-z\"]{0,6}(, ?)?", fullmatch=True),
    st.just(http_date(NOW)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=6), st.floats(min_value=0, max_value=4e9))
def test_property_never_raises_and_results_are_sane(
    pairs: list[tuple[str, str]], now: float
) -> None:
    info = parse_rate_limit_headers(pairs, now=now)
    if info is None:
        return
    for field in ("limit", "remaining"):
        value = getattr(info, field)
        assert value is None or (isinstance(value, int) and 0 <= value <= 10**12)
    for field in ("reset_after", "retry_after", "window"):
        value = getattr(info, field)
        assert value is None or 0.0 <= value <= MAX_SANE_DELAY
    assert info.dialect in {
        "ratelimit",
        "ratelimit-draft07",
        "ratelimit-fields",
        "x-ratelimit",
        "x-rate-limit",
        "retry-after",
    }
    RateLimitParser.parse_headers(dict(pairs), now=now)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.floats(allow_nan=True, allow_infinity=True))
def test_property_parse_retry_after_never_raises(value: str, now: float) -> None:
    result = parse_retry_after(value, now=now)
    assert result is None or result >= 0.0


# -- the plan's RateLimitParser ----------------------------------------------------


@responses.activate
def test_rate_limit_parser_plan_dict_form() -> None:
    responses.add(
        responses.GET,
        "https://api.example.com/search",
        status=429,
        headers={
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(NOW) + 42),
            "Retry-After": http_date(NOW + 42),
        },
    )
    response = requests.get("https://api.example.com/search", timeout=5)
    parsed = RateLimitParser.parse_headers(response, now=NOW)
    assert parsed == {"remaining": 0, "reset": 42.0, "retry_after": 42.0}


def test_rate_limit_parser_none_without_headers() -> None:
    response = requests.Response()
    assert RateLimitParser.parse_headers(response) is None


def test_rate_limit_info_is_frozen() -> None:
    info = RateLimitInfo(remaining=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.remaining = 2  # type: ignore[misc]
