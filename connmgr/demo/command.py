"""``connmgr demo`` in a terminal: the header, the live timeline, the summary."""

from __future__ import annotations

import argparse

from connmgr.demo.printer import TimelinePrinter
from connmgr.demo.runner import run_story
from connmgr.demo.story import select_chapters
from connmgr.demo.timings import DemoTimings
from connmgr.demo.world import DemoWorld
from connmgr.machine import ConnectionState
from connmgr.terminal import Terminal

__all__ = ["run_cli"]


def run_cli(args: argparse.Namespace, terminal: Terminal) -> int:
    """``connmgr demo`` in a terminal: header, live timeline, summary; exit 0 when all went to plan.

    ``args`` holds ``scenario`` (a chapter name or ``None``), ``fast`` and ``workers``.
    Exits 1 when an expected state was not reached or an exception escaped the tree.
    """
    timings = DemoTimings.fast() if getattr(args, "fast", False) else DemoTimings()
    scenario = getattr(args, "scenario", None)
    workers = int(getattr(args, "workers", 4) or 4)
    try:
        chapters = select_chapters([scenario] if scenario else None)
    except ValueError as exc:
        terminal.line(f"error: {exc}", style="bold red")
        return 64
    printer = TimelinePrinter(terminal)
    with terminal, DemoWorld(timings=timings) as world:
        printer.header(world, timings, workers)
        report = run_story(
            world.manager,
            world.api,
            set_network=world.set_network,
            chapters=chapters,
            timings=timings,
            workers=workers,
            on_event=printer,
        )
        terminal.stop()
        printer.summary(report)
    if scenario is None:
        missing = [s.value for s in ConnectionState if s not in report.states_visited]
        if missing:
            terminal.line(f"not visited: {', '.join(missing)}", style="bold red")
            return 1
    return 0 if report.ok else 1
