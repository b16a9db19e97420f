"""The words and colour arithmetic behind the widgets (no display needed)."""

from __future__ import annotations

import pytest
from qt_helpers import FakeSnapshot

from connmgr.machine import ConnectionState as S
from connmgr.qt._text import (
    countdown_due,
    describe_error,
    format_countdown,
    format_delay,
    network_kind,
    status_line,
)
from connmgr.qt.colors import contrast_ratio, parse_hex, readable_color


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (0.2, "1 s"), (12, "12 s"), (59.5, "1 min"), (60, "1 min"), (125, "2 min 5 s"),
     (3600, "1 h 0 min"), (-3, "0 s")],
)  # fmt: skip
def test_format_countdown(seconds, text):
    assert format_countdown(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [(2.4, "2.4 s"), (0.04, "0.0 s"), (12.2, "13 s")])
def test_format_delay(seconds, text):
    assert format_delay(seconds) == text


def snap(state, *, resume_at=None, retry_in=None, network="online", taken_at=100.0):
    return FakeSnapshot(
        "http://a:80", state, 90.0, resume_at, retry_in, None, 0, {}, None, "", network, taken_at
    )


def test_status_line_uses_resume_at_or_retry_in():
    assert status_line(snap(S.RATE_LIMITED, resume_at=112.0), 100.0) == (
        "Rate limited — resuming in 12 s"
    )
    assert status_line(snap(S.BACKOFF, retry_in=8.0, taken_at=100.0), 100.5) == (
        "Server trouble — retrying in 8 s"
    )
    assert status_line(snap(S.BACKOFF, retry_in=8.0), 109.0) == "Server trouble — trying again now"
    assert status_line(snap(S.RATE_LIMITED), 100.0) == "Rate limited"
    assert countdown_due(snap(S.ONLINE, resume_at=5.0)) is None


def test_captive_portal_wins_over_the_state():
    assert status_line(snap(S.OFFLINE, network="captive_portal"), 0) == "Sign in to the network"


def test_describe_error_prefers_plain_words():
    class BusyError(Exception):
        user_message = "The server is busy."
        suggestion = "Try again in a minute."

    assert describe_error(BusyError("503")) == "The server is busy. Try again in a minute."
    assert describe_error(ValueError("boom")) == "boom"
    assert describe_error(None) == "none"


def test_network_kind_reads_statuses_by_name():
    from types import SimpleNamespace

    from connmgr.network import NetworkStatus

    assert network_kind(NetworkStatus.ONLINE) == "online"
    assert network_kind(NetworkStatus.CAPTIVE_PORTAL) == "captive_portal"
    assert network_kind(SimpleNamespace(name="LIMITED")) == "limited"
    assert network_kind("offline") == "offline"
    assert network_kind(None) == "unknown"
    assert network_kind(42) == "unknown"


def test_contrast_ratio_matches_wcag_reference_values():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)


@pytest.mark.parametrize("background", ["#ffffff", "#efefef", "#202124", "#777777"])
def test_readable_color_reaches_the_ratio_on_any_background(background):
    for colour in ("#1a7f37", "#9a6700", "#8250df", "#cf222e", "#57606a", "#bc4c00"):
        assert contrast_ratio(readable_color(colour, background, 4.5), background) >= 4.5
    assert readable_color("#000000", "#ffffff") == "#000000"  # unchanged when it passes


def test_parse_hex_validates():
    assert parse_hex("#abc") == (0xAA, 0xBB, 0xCC)
    with pytest.raises(ValueError, match="color"):
        parse_hex("#12345")
    with pytest.raises(ValueError, match="color"):
        parse_hex("#zzzzzz")
