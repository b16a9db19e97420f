"""``connmgr demo``: the terminal story, or with ``--gui`` the Qt window."""

from __future__ import annotations

import argparse
import importlib.util
from typing import IO

from connmgr.commands.exits import EXIT_USAGE
from connmgr.commands.messages import fail
from connmgr.terminal import Terminal

__all__ = ["cmd_demo"]


def cmd_demo(args: argparse.Namespace, out: IO[str], err: Terminal) -> int:
    """``connmgr demo``: the terminal story, or ``--gui``: the Qt window."""
    if args.gui:
        if importlib.util.find_spec("PySide6") is None:
            fail(
                err,
                "the demo window needs PySide6, which is not installed",
                "Install the extra 'qt': pip install 'connmgr[qt]' (or run 'connmgr demo' "
                "without --gui for the terminal demo).",
            )
            return 1
        from connmgr.qt.demo import main as gui_main

        code: int = gui_main(args)
        return code
    if args.screenshots or args.seconds:
        fail(err, "--screenshots and --seconds go with --gui")
        return EXIT_USAGE
    from connmgr.demo.command import run_cli

    return run_cli(args, Terminal(out))
