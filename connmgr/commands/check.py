"""``connmgr check``: run every connectivity probe and say whether the internet is reachable."""

from __future__ import annotations

import argparse
from typing import IO

from connmgr.commands.exits import EXIT_USAGE
from connmgr.commands.messages import fail
from connmgr.commands.options import parse_probe
from connmgr.terminal import Terminal

__all__ = ["cmd_check"]


def cmd_check(args: argparse.Namespace, out: IO[str], err: Terminal) -> int:
    """``connmgr check``: run every probe, print each result, exit 0/1/2."""
    from connmgr.network import DEFAULT_PROBES, NetworkMonitor, NetworkStatus, decide_status

    try:
        probes = [parse_probe(p, expect_status=args.expect) for p in args.probe] or list(
            DEFAULT_PROBES
        )
        monitor = NetworkMonitor(probes=probes, timeout=args.timeout)
    except ValueError as exc:
        fail(err, str(exc))
        return EXIT_USAGE
    term = Terminal(out)
    with term.working(f"probing ({len(probes)} probe{'s' if len(probes) != 1 else ''})…"):
        results = monitor.diagnose()
    marks = {
        NetworkStatus.ONLINE: ("✓", "green"),
        NetworkStatus.CAPTIVE_PORTAL: ("!", "yellow"),
    }
    width = max(len(r.probe.name) for r in results)
    for result in results:
        mark, style = marks.get(result.status, ("✗", "red"))
        detail = f"  ({result.detail})" if result.detail else ""
        term.line(
            f"{mark} {result.probe.name.ljust(width)}  {result.status.value:<14} "
            f"{result.elapsed * 1000:8.1f} ms{detail}",
            style=style,
        )
    verdict = decide_status(results) or NetworkStatus.OFFLINE
    if verdict is NetworkStatus.ONLINE:
        term.line("Online: the internet is reachable.", style="bold green")
        return 0
    if verdict is NetworkStatus.CAPTIVE_PORTAL:
        term.line(
            "Captive portal: a network login page is in the way. Open a browser and sign in "
            "to the network (hotel, airport, café Wi-Fi).",
            style="bold yellow",
        )
        return 2
    term.line(
        "Offline: no probe got through. Check the Wi-Fi or cable, or a VPN or firewall.",
        style="bold red",
    )
    return 1
