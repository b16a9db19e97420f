"""``connmgr statechart``: print or write the connection state machine's diagram."""

from __future__ import annotations

import argparse
from typing import IO

from connmgr.commands.exits import EXIT_OK, EXIT_USAGE
from connmgr.commands.messages import fail
from connmgr.terminal import Terminal

__all__ = ["cmd_statechart"]


def cmd_statechart(args: argparse.Namespace, out: IO[str], err: Terminal) -> int:
    """``connmgr statechart``: print or write the diagram."""
    from connmgr.statechart import DiagramDependencyError, format_for_path, render, write

    try:
        fmt = args.format or (format_for_path(args.output) if args.output else "mermaid")
        if args.output:
            path = write(args.output, fmt, highlight=args.highlight)
            err.line(f"wrote {path} ({fmt})")
        else:
            out.write(render(fmt, highlight=args.highlight))
            out.flush()
    except DiagramDependencyError as exc:
        fail(err, str(exc))
        return 1
    except ValueError as exc:
        fail(err, str(exc))
        return EXIT_USAGE
    except OSError as exc:
        fail(err, f"could not write {args.output}: {exc.strerror or exc}")
        return 1
    return EXIT_OK
