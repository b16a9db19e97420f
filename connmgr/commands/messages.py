"""The words ``connmgr`` prints for a failure: ``error: ...`` and its suggestion.

Example::

    fail(term, "could not write out.json: Permission denied")
"""

from __future__ import annotations

from connmgr.terminal import Terminal

__all__ = ["fail"]


def fail(term: Terminal, message: str, suggestion: str = "") -> None:
    """Print ``error: message`` (bold red on a terminal) and the suggestion under it."""
    term.line(f"error: {message}", style="bold red")
    if suggestion:
        term.line(f"  {suggestion}")
