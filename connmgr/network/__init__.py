"""Network state: is there a working way out to the internet, right now?

A :class:`NetworkMonitor` answers :meth:`~NetworkMonitor.is_online` from a
cache that costs a clock read and a compare, and refreshes that cache by
running its *probes* concurrently:

* :class:`HttpProbe` asks an endpoint that answers ``204 No Content`` (the
  check browsers and phones make). Anything else that looks like a page, a
  redirect or ``511`` means a captive portal (a hotel or airport login page)
  stands between the app and the internet.
* :class:`TcpProbe` opens a TCP connection (the original plan's check).
* :class:`DnsProbe` resolves a host name.

The first conclusive answer wins, so one dead probe target never makes a check
slow: an HTTP ``204`` or a portal page decides at once; a TCP or DNS success
decides at once unless an HTTP probe is still running, which then gets a short
grace period (``portal_grace``) to report a portal, because portals often let
TCP and DNS through; ``OFFLINE`` needs every probe to fail.

While online the answer is cached for ``interval`` seconds; while offline (or
behind a portal) it is re-probed every ``offline_interval`` seconds for the
first six checks (so a short drop is noticed within one ``offline_interval``),
then backing off ×2 per failed check toward ``interval``. Concurrent callers share one
probe round. :data:`connmgr.signals.network_changed` is sent when the status
changes, never while the monitor holds its lock.

The request path feeds the monitor: :meth:`~NetworkMonitor.report_failure`
after a connect or DNS failure re-probes (debounced) and says whether the
network is really gone; :meth:`~NetworkMonitor.report_success` records that a
response arrived, which proves connectivity without a probe.

Example::

    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", 8080)], interval=30.0)
    monitor.is_online()            # probes once, then answers from the cache
    monitor.status                 # NetworkStatus.ONLINE
    monitor.start()                # background watcher: events without asking
    ...
    monitor.stop()                 # returns within 100 ms

The original plan's static names live on :class:`NetworkState` and delegate to
a replaceable default monitor (:func:`set_default_monitor`).

The package, one concern per module: :mod:`~connmgr.network.status` (the
words), :mod:`~connmgr.network.probes` (the checks),
:mod:`~connmgr.network.decide` (combining results),
:mod:`~connmgr.network.round` (one concurrent round),
:mod:`~connmgr.network.monitor` (cache, watcher, events) and
:mod:`~connmgr.network.default` (the replaceable default monitor).
"""

from __future__ import annotations

from connmgr.network.decide import decide_status
from connmgr.network.default import get_default_monitor, set_default_monitor
from connmgr.network.monitor import NetworkMonitor
from connmgr.network.plan import NetworkState
from connmgr.network.probes import (
    DEFAULT_PROBES,
    DnsProbe,
    HttpProbe,
    Probe,
    ProbeResult,
    TcpProbe,
)
from connmgr.network.status import NetworkStatus

__all__ = [
    "DEFAULT_PROBES",
    "DnsProbe",
    "HttpProbe",
    "NetworkMonitor",
    "NetworkState",
    "NetworkStatus",
    "Probe",
    "ProbeResult",
    "TcpProbe",
    "decide_status",
    "get_default_monitor",
    "set_default_monitor",
]
