"""The plan's NetworkStatusIndicator, built with no arguments as the plan's code builds it.

Offscreen Qt through pytest-qt; skipped without PySide6. "The internet" is a
loopback listener behind the default monitor (see conftest.py).
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from connmgr import NetworkStatusIndicator
from connmgr.compat import NetworkStatusIndicator as FromCompat


def test_the_plan_name_is_the_qt_class():
    from connmgr.qt import NetworkStatusIndicator as FromQt

    assert NetworkStatusIndicator is FromCompat is FromQt


def test_online_then_offline_with_the_plan_signal_and_text(qtbot, loopback_target):
    changes: list[bool] = []
    indicator = NetworkStatusIndicator()
    indicator.status_changed.connect(changes.append)
    qtbot.waitUntil(lambda: indicator.status is not None and indicator.status.value == "online")
    assert indicator.get_status_text() == "Online"
    assert changes == []  # it started optimistic, as the plan's did: no change to report
    loopback_target.close()
    with qtbot.waitSignal(indicator.status_changed, timeout=3000) as changed:
        indicator.check_now()
    assert changed.args == [False]
    assert indicator.get_status_text() == "Offline"
    loopback_target.reopen()
    with qtbot.waitSignal(indicator.status_changed, timeout=3000) as changed:
        indicator.check_now()
    assert changed.args == [True] and changes == [False, True]
    assert indicator.get_status_text() == "Online"
    indicator.close()


def test_it_polls_every_30_seconds_by_default(qtbot):
    indicator = NetworkStatusIndicator()
    assert indicator.polling()
    assert indicator._timer.interval() == 30_000
    indicator.close()
    assert not indicator.polling()
