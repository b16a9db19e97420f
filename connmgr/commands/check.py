"""``connmgr check``: run every connectivity probe and say whether the internet is reachable."""

from __future__ import annotations

import argparse
from typing import IO

from connmgr.commands.exits import EXIT_USAGE, check_exit_code
from connmgr.commands.messages import fail
from connmgr.commands.options import parse_probe
from connmgr.terminal import Terminal

__all__ = ["cmd_check"]


# What the closing line says per status, by name (so a status this version does not
# know, from a newer monitor, still gets a line and an exit code).
_VERDICTS: dict[str, tuple[str, str]] = {
    "ONLINE": ("Online: the internet is reachable.", "bold green"),
    "OFFLINE": (
        "Offline: no probe got through. Check the Wi-Fi or cable, or a VPN or firewall.",
        "bold red",
    ),
    "CAPTIVE_PORTAL": (
        "Captive portal: a network login page is in the way. Open a browser and sign in "
        "to the network (hotel, airport, café Wi-Fi).",
        "bold yellow",
    ),
    "LIMITED": (
        "Limited: there is a network, but it does not reach the internet (names do not "
        "resolve, or web requests fail). Check the router, VPN or firewall.",
        "bold yellow",
    ),
}
_UNKNOWN = ("Unknown: the probes could not tell whether the internet is reachable.", "bold")
_MARKS: dict[str, tuple[str, str]] = {
    "ONLINE": ("✓", "green"),
    "CAPTIVE_PORTAL": ("!", "yellow"),
    "LIMITED": ("~", "yellow"),
}


def cmd_check(args: argparse.Namespace, out: IO[str], err: Terminal) -> int:
    """``connmgr check``: run every probe, print each result, exit with the status's code.

    The codes are :data:`~connmgr.commands.exits.CHECK_EXIT_CODES`: 0 online, 1
    offline, 2 captive portal, 3 limited, 4 unknown.
    """
    from connmgr.network import DEFAULT_PROBES, NetworkMonitor, decide_status

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
    width = max(len(r.probe.name) for r in results)
    for result in results:
        mark, style = _MARKS.get(result.status.name, ("✗", "red"))
        detail = f"  ({result.detail})" if result.detail else ""
        term.line(
            f"{mark} {result.probe.name.ljust(width)}  {result.status.value:<14} "
            f"{result.elapsed * 1000:8.1f} ms{detail}",
            style=style,
        )
    verdict = decide_status(results)
    name = verdict.name if verdict is not None else "UNKNOWN"
    text, style = _VERDICTS.get(name, _UNKNOWN)
    term.line(text, style=style)
    return check_exit_code(name)
