"""RetryConfig customised the plan's way: every field assignable, validated, snapshotted."""

from __future__ import annotations

import copy
import pickle
import random

import pytest
import requests

from connmgr import ConnectionManager
from connmgr.compat import exponential_backoff
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock

GOOD = {
    "max_retries": 5,
    "base_delay": 0.1,
    "max_delay": 2.0,
    "jitter_range": 0.0,
    "exponential_base": 3.0,
    "retry_status_codes": {503, 429},
    "retry_exceptions": (requests.ConnectionError,),
}

BAD = [
    ("max_retries", -1),
    ("max_retries", 2.5),
    ("max_retries", True),
    ("max_retries", "3"),
    ("max_retries", 10**6),
    ("base_delay", -0.1),
    ("base_delay", float("nan")),
    ("base_delay", "0.5"),
    ("max_delay", float("inf")),
    ("max_delay", None),
    ("jitter_range", -1),
    ("jitter_range", 10**400),
    ("exponential_base", 0.5),
    ("exponential_base", False),
    ("retry_status_codes", 503),
    ("retry_status_codes", "503"),
    ("retry_status_codes", {503: 1}),
    ("retry_status_codes", {700}),
    ("retry_status_codes", {404}),
    ("retry_status_codes", {200, 503}),
    ("retry_status_codes", {301}),
    ("retry_exceptions", "ConnectionError"),
    ("retry_exceptions", (ValueError, "x")),
    ("retry_exceptions", (int,)),
    ("retry_exceptions", None),
]


@pytest.mark.parametrize(("field", "value"), GOOD.items(), ids=list(GOOD))
def test_each_plan_field_can_be_assigned(field, value):
    config = RetryConfig()
    setattr(config, field, value)
    assert getattr(config, field) == value
    assert config == RetryConfig(**{field: value})


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v!r}"[:40] for f, v in BAD])
def test_a_bad_value_raises_value_error_naming_the_field(field, value):
    config = RetryConfig()
    before = getattr(config, field)
    with pytest.raises(ValueError, match=rf"RetryConfig\.{field}"):
        setattr(config, field, value)
    assert getattr(config, field) == before  # nothing half-assigned
    with pytest.raises(ValueError, match=rf"RetryConfig\.{field}"):
        RetryConfig(**{field: value})


def test_the_allowed_status_codes_are_those_worth_asking_again():
    config = RetryConfig()
    config.retry_status_codes = [408, 425, 429, 500, 599]
    assert config.retry_status_codes == frozenset({408, 425, 429, 500, 599})
    with pytest.raises(ValueError, match="404 is never retried"):
        config.retry_status_codes = {404}


def test_a_single_exception_class_becomes_a_tuple():
    config = RetryConfig()
    config.retry_exceptions = TimeoutError
    assert config.retry_exceptions == (TimeoutError,)


def test_an_unknown_field_names_itself():
    config = RetryConfig()
    with pytest.raises(AttributeError, match="RetryConfig has no field 'max_retry'"):
        config.max_retry = 5  # type: ignore[attr-defined]


def test_a_field_set_on_the_class_is_refused_with_the_way_to_do_it():
    with pytest.raises(AttributeError, match=r"set it on an instance.*RetryConfig\(max_retries"):
        RetryConfig.max_retries = 5  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del RetryConfig.base_delay
    assert RetryConfig().max_retries == 3  # every instance still works


def test_copy_pickle_and_replace_keep_assigned_values():
    config = RetryConfig()
    config.retry_exceptions = (Exception,)
    config.max_retries = 1
    for twin in (config.copy(), copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert twin == config and twin is not config
    twin = config.copy()
    twin.max_retries = 2
    assert config.max_retries == 1


def test_the_manager_takes_a_snapshot_of_the_config():
    config = RetryConfig(max_retries=2)
    with ConnectionManager(retry=config, clock=FakeClock()) as mgr:
        config.max_retries = 0
        assert mgr.retry_config.max_retries == 2
        assert mgr.retry_config is not config


def test_the_decorator_takes_a_snapshot_per_call():
    config = RetryConfig(jitter_range=0.0)
    clock = FakeClock()
    calls = []

    def fail():
        calls.append(1)
        if len(calls) == 1:
            config.max_retries = 0  # during the call: applies to the next one only
        raise requests.ConnectionError("down")

    wrapped = exponential_backoff(fail, config, clock=clock, rng=random.Random(0))
    with pytest.raises(requests.ConnectionError):
        wrapped()
    assert len(calls) == 4
    calls.clear()
    with pytest.raises(requests.ConnectionError):
        wrapped()
    assert len(calls) == 1
