"""The ``connmgr`` command's subcommands, one module each.

:mod:`connmgr.cli` parses the arguments and dispatches here:
:mod:`~connmgr.commands.get`, :mod:`~connmgr.commands.check`,
:mod:`~connmgr.commands.chart` and :mod:`~connmgr.commands.demo`. The exit
codes are in :mod:`~connmgr.commands.exits`, the option parsers in
:mod:`~connmgr.commands.options`, the words for failures in
:mod:`~connmgr.commands.messages`.

This package imports nothing itself, so each command loads only what it uses.
"""
