"""``python -m connmgr``: the ``connmgr`` command (see :mod:`connmgr.cli`)."""

from __future__ import annotations

from connmgr.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
