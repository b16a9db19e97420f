"""Network truth: is there a working way out to the internet, right now?

A :class:`NetworkMonitor` answers :meth:`~NetworkMonitor.is_online` from a
cache that costs a clock read and a compare, and refreshes that cache by
running its *probes* concurrently:

* :class:`HttpProbe` asks an endpoint that answers ``204 No Content`` (the
  check browsers and phones make). It *validates* the internet; a page, a
  redirect or ``511`` means a captive portal.
* :class:`TcpProbe` opens a TCP connection; :class:`DnsProbe` resolves a name.

:class:`NetworkStatus` is the verdict (:func:`conclude` gives it with a
reason): ``ONLINE`` (validated), ``LIMITED`` (connected, but the internet is
not reachable, e.g. "name lookup (DNS) failing"), ``CAPTIVE_PORTAL``,
``OFFLINE``, ``UNKNOWN``. With an HTTP probe configured, ``ONLINE`` needs an
HTTP probe's expected answer; with only TCP/DNS probes a success is enough.

The monitor keeps a network *epoch* (:attr:`NetworkMonitor.epoch`) that grows
on every status change, every OS change hint (Linux netlink through
:class:`~connmgr.network.os_events.NetlinkListener`, or Qt's
``QNetworkInformation``) and every resume from sleep (:class:`SleepDetector`).
:data:`connmgr.signals.network_changed` carries status changes,
:data:`connmgr.signals.network_epoch_changed` every new epoch.

Example::

    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", 8080)], interval=30.0)
    monitor.is_online()            # probes once, then answers from the cache
    monitor.status, monitor.reason # NetworkStatus.ONLINE, 'tcp 127.0.0.1:8080 succeeded ...'
    monitor.start()                # background watcher + OS events
    ...
    monitor.stop()                 # returns within 100 ms

The package, one concern per module: ``status`` (the words), ``probes`` and
``sockets`` (the checks), ``decide`` (the truth table), ``round`` (one
concurrent round), ``events`` (signals, in order), ``os_events`` (netlink),
``sleep`` (suspend), ``monitor`` (cache, epochs, watcher), ``default`` and
``plan`` (the original plan's ``NetworkState`` and its ``ConnectProbe``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connmgr import lazy

if TYPE_CHECKING:  # at run time each name loads from its module on first use
    from connmgr.network.decide import DNS_FAILING, Conclusion, conclude, decide_status
    from connmgr.network.default import get_default_monitor, set_default_monitor
    from connmgr.network.events import EpochCause
    from connmgr.network.monitor import NO_LINK, NetworkMonitor
    from connmgr.network.os_events import NetlinkListener
    from connmgr.network.plan import ConnectProbe, NetworkState
    from connmgr.network.probes import (
        DEFAULT_PROBES,
        DnsProbe,
        HttpProbe,
        Probe,
        ProbeResult,
        TcpProbe,
    )
    from connmgr.network.sleep import SleepDetector
    from connmgr.network.status import NetworkStatus, ProbeFailure

#: Where each name lives: the netlink listener, the plan's facade and the rest load
#: only when used.
_HOMES = {
    "DNS_FAILING": "connmgr.network.decide",
    "Conclusion": "connmgr.network.decide",
    "conclude": "connmgr.network.decide",
    "decide_status": "connmgr.network.decide",
    "get_default_monitor": "connmgr.network.default",
    "set_default_monitor": "connmgr.network.default",
    "EpochCause": "connmgr.network.events",
    "NO_LINK": "connmgr.network.monitor",
    "NetworkMonitor": "connmgr.network.monitor",
    "NetlinkListener": "connmgr.network.os_events",
    "ConnectProbe": "connmgr.network.plan",
    "NetworkState": "connmgr.network.plan",
    "DEFAULT_PROBES": "connmgr.network.probes",
    "DnsProbe": "connmgr.network.probes",
    "HttpProbe": "connmgr.network.probes",
    "Probe": "connmgr.network.probes",
    "ProbeResult": "connmgr.network.probes",
    "TcpProbe": "connmgr.network.probes",
    "SleepDetector": "connmgr.network.sleep",
    "NetworkStatus": "connmgr.network.status",
    "ProbeFailure": "connmgr.network.status",
}


__all__ = [
    "DEFAULT_PROBES",
    "DNS_FAILING",
    "NO_LINK",
    "Conclusion",
    "ConnectProbe",
    "DnsProbe",
    "EpochCause",
    "HttpProbe",
    "NetlinkListener",
    "NetworkMonitor",
    "NetworkState",
    "NetworkStatus",
    "Probe",
    "ProbeFailure",
    "ProbeResult",
    "SleepDetector",
    "TcpProbe",
    "conclude",
    "decide_status",
    "get_default_monitor",
    "set_default_monitor",
]

__getattr__, __dir__ = lazy.exports(__name__, _HOMES, __all__)
