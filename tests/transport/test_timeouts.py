"""TimeoutConfig, TimeoutProfiles, NetworkConfig, Deadline and attempt_timeouts (no network)."""

from __future__ import annotations

import dataclasses
import math
import threading

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from connmgr.errors import DeadlineExceededError
from connmgr.testing.clock import FakeClock
from connmgr.timeouts import (
    MIN_ATTEMPT_TIMEOUT,
    Deadline,
    NetworkConfig,
    TimeoutConfig,
    TimeoutProfiles,
    UnknownOperationError,
    attempt_timeouts,
)

# --------------------------------------------------------------------------- TimeoutConfig


def test_defaults_and_plan_profiles() -> None:
    assert TimeoutConfig() == TimeoutConfig(connect=5.0, read=30.0, total=60.0)
    assert TimeoutConfig.for_search() == TimeoutConfig(connect=5.0, read=45.0, total=90.0)
    assert TimeoutConfig.for_quick_check() == TimeoutConfig(connect=5.0, read=10.0, total=20.0)
    assert TimeoutConfig.for_download() == TimeoutConfig(
        connect=5.0, read=60.0, total=300.0, max_body_bytes=None
    )


def test_ints_are_stored_as_floats_and_total_none_means_no_limit() -> None:
    config = TimeoutConfig(connect=2, read=10, total=None)
    assert (config.connect, config.read, config.total) == (2.0, 10.0, None)
    assert isinstance(config.connect, float)
    assert config.as_tuple() == (2.0, 10.0)


def test_total_may_be_shorter_than_connect_or_read() -> None:
    config = TimeoutConfig(connect=5, read=30, total=1)
    assert config.total == 1.0


@pytest.mark.parametrize("field", ["connect", "read", "total"])
@pytest.mark.parametrize("bad", [0, -1, -0.5, math.nan, math.inf, True, False, "5", [5]])
def test_bad_values_raise_value_error_naming_field_and_value(field: str, bad: object) -> None:
    with pytest.raises(ValueError) as info:
        TimeoutConfig(**{field: bad})  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{field} ")
    assert repr(bad) in message


@pytest.mark.parametrize("field", ["connect", "read"])
def test_only_total_may_be_none(field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} .*None"):
        TimeoutConfig(**{field: None})  # type: ignore[arg-type]


def test_frozen_keyword_only_and_replace() -> None:
    config = TimeoutConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.read = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        TimeoutConfig(5.0, 30.0, 60.0)  # type: ignore[misc]
    assert dataclasses.replace(config, read=15).read == 15.0
    with pytest.raises(ValueError, match="read"):
        dataclasses.replace(config, read=-1)


def test_config_from_dict_over_a_base() -> None:
    base = TimeoutConfig.for_search()
    assert TimeoutConfig.from_dict({"read": 50}, base=base) == TimeoutConfig(
        connect=5, read=50, total=90
    )
    assert TimeoutConfig.from_dict({"total": None}).total is None
    assert TimeoutConfig.from_dict({}) == TimeoutConfig()
    assert TimeoutConfig.from_dict(TimeoutConfig(read=7).to_dict()) == TimeoutConfig(read=7)
    with pytest.raises(ValueError, match=r"^timeouts\.reed is not a timeout field"):
        TimeoutConfig.from_dict({"reed": 1}, path="timeouts")
    with pytest.raises(ValueError, match=r"^connect must be .*'3'"):
        TimeoutConfig.from_dict({"connect": "3"})


# --------------------------------------------------------------------------- TimeoutProfiles


def test_profiles_hold_the_four_defaults() -> None:
    profiles = TimeoutProfiles()
    assert dict(profiles) == {
        "default": TimeoutConfig(),
        "search": TimeoutConfig.for_search(),
        "quick": TimeoutConfig.for_quick_check(),
        "download": TimeoutConfig.for_download(),
    }
    assert len(profiles) == 4
    assert "search" in profiles and "upload" not in profiles


def test_profiles_from_settings_dict() -> None:
    profiles = TimeoutProfiles.from_dict(
        {
            "search": {"read": 50, "total": 100},
            "upload": {"connect": 3, "read": 20, "total": 40},
        }
    )
    assert profiles["search"] == TimeoutConfig(connect=5, read=50, total=100)
    assert profiles["upload"] == TimeoutConfig(connect=3, read=20, total=40)
    assert profiles["quick"] == TimeoutConfig.for_quick_check()  # untouched
    assert profiles["default"] == TimeoutConfig()


def test_new_profiles_start_from_the_configured_default() -> None:
    profiles = TimeoutProfiles.from_dict(
        {"default": {"connect": 2}, "export": {"total": None}, "search": {"total": 99}}
    )
    assert profiles["default"] == TimeoutConfig(connect=2, read=30, total=60)
    assert profiles["export"] == TimeoutConfig(connect=2, read=30, total=None)
    # a built-in name starts from its own built-in profile, not from "default"
    assert profiles["search"] == TimeoutConfig(connect=5, read=45, total=99)


def test_profile_entries_may_be_configs() -> None:
    profiles = TimeoutProfiles.from_dict({"quick": TimeoutConfig(read=1, total=2)})
    assert profiles["quick"] == TimeoutConfig(read=1, total=2)
    assert profiles["search"] == TimeoutConfig.for_search()


@pytest.mark.parametrize("entry", [None, 5, "fast", [1, 2]])
@pytest.mark.parametrize("name", ["search", "default", "upload"])
def test_a_profile_entry_that_is_not_a_mapping_is_refused(name: str, entry: object) -> None:
    # An entry left empty in a settings file is a mistake, not "use the built-ins".
    with pytest.raises(ValueError, match=rf"^profiles\.{name} must be a mapping"):
        TimeoutProfiles.from_dict({name: entry})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"search": {"reed": 50}}, r"^profiles\.search\.reed is not a timeout field"),
        ({"upload": {"total": -4}}, r"^profiles\.upload\.total must be .*-4"),
        ({"upload": {"read": True}}, r"^profiles\.upload\.read must be .*True"),
        ({"upload": 5}, r"^profiles\.upload must be a mapping"),
        ({"": {}}, r"operation name must be a non-empty string"),
        ([1, 2], r"^profiles must be a mapping"),
    ],
)
def test_profiles_from_dict_errors_name_the_place(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimeoutProfiles.from_dict(data)  # type: ignore[arg-type]


def test_profiles_round_trip_through_plain_data() -> None:
    profiles = TimeoutProfiles.from_dict({"upload": {"connect": 3, "read": 20, "total": None}})
    assert TimeoutProfiles.from_dict(profiles.to_dict()) == profiles
    assert hash(TimeoutProfiles.from_dict(profiles.to_dict())) == hash(profiles)


def test_unknown_operation_lists_the_known_ones() -> None:
    profiles = TimeoutProfiles()
    with pytest.raises(ValueError, match="unknown operation 'serch'; known operations: default"):
        profiles.get("serch")
    with pytest.raises(KeyError) as info:
        profiles["serch"]
    assert isinstance(info.value, UnknownOperationError)
    assert "download, quick, search" in str(info.value)
    assert profiles.get("serch", None) is None
    assert profiles.get("search") == TimeoutConfig.for_search()
    assert profiles.resolve("serch") == profiles["default"]
    assert profiles.resolve() == profiles["default"]


def test_profiles_are_immutable_and_with_profile_copies() -> None:
    profiles = TimeoutProfiles()
    with pytest.raises(TypeError):
        profiles["x"] = TimeoutConfig()  # type: ignore[index]
    more = profiles.with_profile("export", TimeoutConfig(read=120, total=600))
    assert "export" in more and "export" not in profiles
    assert more.with_profile("search", TimeoutConfig(total=1))["search"].total == 1.0
    with pytest.raises(ValueError, match="TimeoutConfig"):
        TimeoutProfiles({"x": {"read": 1}})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="non-empty"):
        profiles.with_profile("", TimeoutConfig())


# --------------------------------------------------------------------------- NetworkConfig


def test_network_config_get_timeout_as_in_the_plan() -> None:
    assert NetworkConfig.get_timeout() == TimeoutConfig()
    assert NetworkConfig.get_timeout("search") == TimeoutConfig.for_search()
    assert NetworkConfig.get_timeout("quick") == TimeoutConfig.for_quick_check()
    assert NetworkConfig.get_timeout("download") == TimeoutConfig.for_download()
    assert NetworkConfig.get_timeout("no-such-thing") == TimeoutConfig()


def test_network_config_defaults_are_replaceable_and_restored() -> None:
    custom = TimeoutProfiles.from_dict({"search": {"total": 5}, "upload": {"read": 2}})
    original = NetworkConfig.get_profiles()
    with NetworkConfig.use_profiles(custom):
        assert NetworkConfig.get_timeout("search").total == 5.0
        assert NetworkConfig.get_timeout("upload").read == 2.0
        seen: list[TimeoutConfig] = []
        worker = threading.Thread(target=lambda: seen.append(NetworkConfig.get_timeout("search")))
        worker.start()
        worker.join()
        assert seen[0].total == 5.0  # process-wide, not per thread
    assert NetworkConfig.get_profiles() is original

    with pytest.raises(RuntimeError), NetworkConfig.use_profiles(custom):
        raise RuntimeError("boom")
    assert NetworkConfig.get_profiles() is original

    previous = NetworkConfig.set_profiles(custom)
    try:
        assert previous is original
        assert NetworkConfig.get_timeout("upload").read == 2.0
    finally:
        assert NetworkConfig.set_profiles(previous) is custom
    with pytest.raises(ValueError, match="TimeoutProfiles"):
        NetworkConfig.set_profiles({"search": TimeoutConfig()})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Deadline


def test_deadline_on_a_fake_clock() -> None:
    clock = FakeClock(start=100.0)
    deadline = Deadline(2.0, clock=clock)
    assert deadline.total == 2.0
    assert deadline.started_at == 100.0
    assert deadline.expires_at == 102.0
    assert deadline.clock is clock
    assert deadline.remaining() == 2.0 and not deadline.expired
    clock.advance(0.5)
    assert deadline.remaining() == 1.5
    assert deadline.elapsed() == 0.5
    assert deadline.fits(1.0) and not deadline.fits(1.5)
    deadline.raise_if_expired()
    clock.advance(1.5)
    assert deadline.expired and deadline.remaining() == 0.0
    clock.advance(10)
    assert deadline.remaining() == 0.0  # never negative
    assert deadline.elapsed() == 12.0
    with pytest.raises(DeadlineExceededError) as info:
        deadline.raise_if_expired(url="http://example.test/x", operation="search")
    assert isinstance(info.value, requests.Timeout)
    assert info.value.operation == "search"
    assert "2 s" in str(info.value)


def test_a_deadline_can_start_at_a_given_instant() -> None:
    # The lazy start: a caller notes the instant, and builds the object only if needed.
    clock = FakeClock(start=50.0)
    clock.advance(0.5)
    deadline = Deadline(2.0, clock=clock, started_at=50.0)
    assert deadline.started_at == 50.0 and deadline.expires_at == 52.0
    assert deadline.remaining() == 1.5 and deadline.elapsed() == 0.5


def test_unlimited_and_zero_deadlines() -> None:
    clock = FakeClock()
    unlimited = Deadline(None, clock=clock)
    clock.advance(1e6)
    assert unlimited.remaining() is None
    assert unlimited.expires_at is None
    assert not unlimited.expired
    assert unlimited.fits(1e9)
    assert repr(unlimited) == "Deadline(total=None)"
    zero = Deadline(0, clock=clock)
    assert zero.expired and zero.remaining() == 0.0


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, True, "1"])
def test_deadline_validates_total(bad: object) -> None:
    with pytest.raises(ValueError, match="Deadline total"):
        Deadline(bad)  # type: ignore[arg-type]


def test_deadline_defaults_to_the_system_clock() -> None:
    deadline = Deadline(60)
    remaining = deadline.remaining()
    assert remaining is not None and 59.0 < remaining <= 60.0


# --------------------------------------------------------------------------- attempt_timeouts


def test_attempt_timeouts_cap_by_the_time_left() -> None:
    clock = FakeClock()
    config = TimeoutConfig(connect=5, read=30, total=60)
    assert attempt_timeouts(config, None) == (5.0, 30.0)
    assert attempt_timeouts(config, Deadline(None, clock=clock)) == (5.0, 30.0)
    deadline = Deadline(60, clock=clock)
    assert attempt_timeouts(config, deadline) == (5.0, 30.0)
    clock.advance(40)
    assert attempt_timeouts(config, deadline) == (5.0, 20.0)
    clock.advance(18)
    assert attempt_timeouts(config, deadline) == (2.0, 2.0)
    clock.advance(5)
    assert attempt_timeouts(config, deadline) == (MIN_ATTEMPT_TIMEOUT, MIN_ATTEMPT_TIMEOUT)


@given(
    connect=st.floats(0.001, 1e4),
    read=st.floats(0.001, 1e4),
    total=st.floats(0.0, 1e4),
    spent=st.floats(0.0, 2e4),
)
def test_attempt_timeouts_never_exceed_config_or_time_left(
    connect: float, read: float, total: float, spent: float
) -> None:
    clock = FakeClock()
    deadline = Deadline(total, clock=clock)
    clock.advance(spent)
    c, r = attempt_timeouts(TimeoutConfig(connect=connect, read=read, total=None), deadline)
    left = max(total - spent, MIN_ATTEMPT_TIMEOUT)
    assert MIN_ATTEMPT_TIMEOUT <= c <= connect and MIN_ATTEMPT_TIMEOUT <= r <= read
    assert c <= left + 1e-9 and r <= left + 1e-9
    assert c == pytest.approx(min(connect, left)) or c == MIN_ATTEMPT_TIMEOUT
    assert r == pytest.approx(min(read, left)) or r == MIN_ATTEMPT_TIMEOUT
