"""The state machine on a fake clock: one test per row of the transitions table."""

from __future__ import annotations

import dataclasses
import random

import pytest

from connmgr.machine import (
    STATE_EFFECTS,
    TRANSITIONS,
    ConnectionState,
    Gate,
    MachinePolicy,
    OriginMachine,
    Outcome,
)
from connmgr.testing import FakeClock

S = ConnectionState
ORIGIN = "http://127.0.0.1:80"


def make(policy: MachinePolicy | None = None, **kw) -> tuple[OriginMachine, FakeClock]:
    clock = FakeClock()
    policy = policy or MachinePolicy(cooldown_jitter=0.0, **kw)
    return OriginMachine(ORIGIN, policy, clock=clock, rng=random.Random(7)), clock


def to_backoff(m: OriginMachine) -> None:
    for _ in range(m.policy.trip_after):
        m.record(Outcome.TRANSIENT)
    assert m.state is S.BACKOFF


# -- one test per row --------------------------------------------------------------


def test_row_online_to_backoff_after_trip_after_transients():
    m, _ = make(degrade_after=10)  # keep degrade out of the way
    for _ in range(4):
        m.record(Outcome.TRANSIENT)
    assert m.state is S.ONLINE
    changes = m.record(Outcome.TRANSIENT)
    assert [(c.old, c.new) for c in changes] == [(S.ONLINE, S.BACKOFF)]


def test_row_degraded_to_backoff_after_trip_after_transients():
    m, _ = make()
    m.record(Outcome.TRANSIENT)
    assert m.state is S.DEGRADED
    for _ in range(3):
        assert m.record(Outcome.TRANSIENT) == []
    assert [(c.old, c.new) for c in m.record(Outcome.TRANSIENT)] == [(S.DEGRADED, S.BACKOFF)]


def test_row_online_to_degraded_on_transient():
    m, _ = make()
    changes = m.record(Outcome.TRANSIENT)
    assert [(c.old, c.new) for c in changes] == [(S.ONLINE, S.DEGRADED)]
    assert changes[0].reason


def test_row_online_to_degraded_on_slow():
    m, _ = make()
    assert [(c.old, c.new) for c in m.record(Outcome.SLOW)] == [(S.ONLINE, S.DEGRADED)]


def test_degrade_after_counts_consecutive_bad_outcomes():
    m, _ = make(degrade_after=2)
    m.record(Outcome.SLOW)
    m.record(Outcome.SUCCESS)
    m.record(Outcome.SLOW)
    assert m.state is S.ONLINE
    m.record(Outcome.TRANSIENT)
    assert m.state is S.DEGRADED


def test_row_trial_transient_reopens_with_a_longer_cooldown():
    m, clock = make()
    to_backoff(m)
    first = m.cooldown_until - clock.now()
    assert first == pytest.approx(2.0)
    clock.advance(first)
    verdict = m.gate()
    assert verdict.trial
    changes = m.record(Outcome.TRANSIENT, trial=True)
    assert [(c.old, c.new) for c in changes] == [(S.BACKOFF, S.BACKOFF)]
    assert m.cooldown_until - clock.now() == pytest.approx(4.0)


def test_transient_from_a_stale_request_in_backoff_does_not_retrip():
    m, _clock = make()
    to_backoff(m)
    until = m.cooldown_until
    assert m.record(Outcome.TRANSIENT) == []
    assert m.cooldown_until == until


def test_row_degraded_to_online_after_recover_after_successes():
    m, _ = make()
    m.record(Outcome.TRANSIENT)
    for _ in range(4):
        assert m.record(Outcome.SUCCESS) == []
    assert [(c.old, c.new) for c in m.record(Outcome.SUCCESS)] == [(S.DEGRADED, S.ONLINE)]


def test_row_trial_success_moves_backoff_to_degraded():
    m, clock = make()
    to_backoff(m)
    clock.advance(2.0)
    assert m.gate().trial
    assert [(c.old, c.new) for c in m.record(Outcome.SUCCESS, trial=True)] == [
        (S.BACKOFF, S.DEGRADED)
    ]


def test_row_offline_to_online_on_any_success():
    m, _ = make()
    m.network_changed(False)
    assert [(c.old, c.new) for c in m.record(Outcome.SUCCESS)] == [(S.OFFLINE, S.ONLINE)]


@pytest.mark.parametrize("source", [S.ONLINE, S.DEGRADED, S.BACKOFF])
def test_row_throttled_moves_to_rate_limited_and_resumes_to_where_it_came_from(source):
    m, clock = make()
    if source is S.DEGRADED:
        m.record(Outcome.TRANSIENT)
    elif source is S.BACKOFF:
        to_backoff(m)
    assert m.state is source
    changes = m.record(Outcome.THROTTLED, retry_after=3.0)
    assert [(c.old, c.new) for c in changes] == [(source, S.RATE_LIMITED)]
    assert m.resume_at == clock.now() + 3.0
    assert m.poll() == []
    clock.advance(3.0)
    assert [(c.old, c.new) for c in m.poll()] == [(S.RATE_LIMITED, source)]


def test_retry_after_is_capped_and_a_later_429_only_extends():
    m, clock = make(max_retry_after=10.0)
    m.record(Outcome.THROTTLED, retry_after=10_000.0)
    assert m.resume_at == clock.now() + 10.0
    m.record(Outcome.THROTTLED, retry_after=1.0)
    assert m.resume_at == clock.now() + 10.0


def test_throttled_without_retry_after_uses_the_default_pause():
    m, clock = make(default_rate_limit_wait=1.5)
    m.record(Outcome.THROTTLED)
    assert m.resume_at == clock.now() + 1.5


@pytest.mark.parametrize("source", list(S))
def test_row_network_down_from_any_state(source):
    m, _ = make()
    m2 = OriginMachine(ORIGIN, m.policy, clock=FakeClock(), initial=source)
    if source is S.OFFLINE:
        assert m2.network_changed(False) == [] or m2.state is S.OFFLINE
    else:
        assert [(c.old, c.new) for c in m2.network_changed(False)] == [(source, S.OFFLINE)]


def test_row_network_up_from_offline():
    m, _ = make()
    m.network_changed(False)
    assert [(c.old, c.new) for c in m.network_changed(True)] == [(S.OFFLINE, S.ONLINE)]


def test_every_row_is_covered_by_a_test_above():
    # If a row is added, this reminds its author to add a test for it.
    assert len(TRANSITIONS) == 13


# -- gates and effects ---------------------------------------------------------------


def test_gate_per_state():
    m, clock = make()
    assert m.gate().action == "pass"
    m.record(Outcome.THROTTLED, retry_after=2.0)
    verdict = m.gate()
    assert (verdict.action, verdict.wait) == ("wait", 2.0)
    clock.advance(2.0)
    m.poll()
    m.network_changed(False)
    assert m.gate().action == "fail"


def test_backoff_lets_exactly_one_trial_through_after_the_cooldown():
    m, clock = make()
    to_backoff(m)
    assert m.gate().action == "wait"
    clock.advance(2.0)
    first, second = m.gate(), m.gate()
    assert first.trial and first.action == "pass"
    assert second.action == "wait" and not second.trial
    m.release_trial()
    assert m.gate().trial


def test_cooldown_doubles_and_is_capped():
    policy = MachinePolicy(cooldown_base=2.0, cooldown_max=10.0, cooldown_jitter=0.0)
    rng = random.Random(1)
    assert [policy.cooldown(t, rng) for t in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_cooldown_jitter_only_shortens():
    policy = MachinePolicy(cooldown_jitter=0.2)
    rng = random.Random(3)
    values = [policy.cooldown(1, rng) for _ in range(200)]
    assert all(1.6 <= v <= 2.0 for v in values)
    assert len(set(values)) > 100


def test_state_effects_table_covers_every_state():
    assert set(STATE_EFFECTS) == set(S)
    assert STATE_EFFECTS[S.DEGRADED].read_factor == 1.5
    assert STATE_EFFECTS[S.DEGRADED].rate_factor == 0.5
    assert STATE_EFFECTS[S.OFFLINE].gate is Gate.FAIL_FAST


def test_fatal_and_unreachable_outcomes_move_nothing():
    m, _ = make()
    assert m.record(Outcome.FATAL) == []
    assert m.record(Outcome.UNREACHABLE) == []
    assert m.state is S.ONLINE
    assert m.counters.by_outcome == {"fatal": 1, "unreachable": 1}


def test_time_in_old_state_is_reported():
    m, clock = make()
    clock.advance(5.0)
    (change,) = m.record(Outcome.TRANSIENT)
    assert change.time_in_old == 5.0


def test_state_values_are_the_documented_strings():
    assert [s.value for s in S] == ["online", "degraded", "rate_limited", "backoff", "offline"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("degrade_after", 0),
        ("recover_after", True),
        ("trip_after", 2.5),
        ("cooldown_base", -1.0),
        ("cooldown_max", float("inf")),
        ("max_wait", float("nan")),
        ("cooldown_jitter", 1.0),
        ("max_retry_after", "10"),
    ],
)
def test_policy_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        MachinePolicy(**{field: value})


def test_policy_is_frozen_and_replaceable():
    policy = MachinePolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_wait = 1.0  # type: ignore[misc]
    assert dataclasses.replace(policy, max_wait=0).max_wait == 0
