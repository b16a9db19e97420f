"""ProbeTarget: a loopback port to point a ``TcpProbe`` at, as the "internet" in tests.

The network monitor decides online/offline by probing; in a test, point it at a
``ProbeTarget`` and switch the network off and on from the test::

    with ProbeTarget() as internet:
        monitor = NetworkMonitor([TcpProbe("127.0.0.1", internet.port)], clock=clock)
        internet.close()        # connections are refused: the monitor goes offline
        internet.blackhole()    # connections hang (SYNs dropped), like a dead Wi-Fi
        internet.reopen()       # the same port answers again
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

__all__ = ["ProbeTarget"]


class ProbeTarget:
    """A loopback TCP port that accepts (and counts) connections until told otherwise.

    - :meth:`close`: nothing listens; connections are refused at once;
    - :meth:`blackhole`: the port listens but never accepts, with a full accept
      queue, so new connections hang until their timeout (packets dropped);
    - :meth:`reopen`: accepting again, on the same :attr:`port`.

    :attr:`accepted` counts the connections accepted so far (one per TCP probe).
    """

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self._socks: list[socket.socket] = []
        self.reopen()

    def reopen(self) -> None:
        """Listen and accept on :attr:`port` (a new port the first time)."""
        self.close()
        sock = self._bind(64)
        threading.Thread(
            target=self._accept, args=(sock,), name="connmgr-probe-target", daemon=True
        ).start()

    def blackhole(self) -> None:
        """Listen with backlog 0, fill the accept queue, never accept: SYNs are dropped."""
        self.close()
        self._bind(0)
        for _ in range(16):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._socks.append(filler)
            if not select.select([], [filler], [], 0.05)[1]:
                return  # this one hangs: the queue is full
        raise RuntimeError("could not fill the accept queue")

    def close(self) -> None:
        """Stop listening: connections to :attr:`port` are refused."""
        for sock in self._socks:
            # shutdown wakes the thread blocked in accept(); close alone does not on Linux.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._socks = []

    def __enter__(self) -> ProbeTarget:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _bind(self, backlog: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(backlog)
        self.port = sock.getsockname()[1]
        self._socks.append(sock)
        return sock

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def __repr__(self) -> str:
        return f"ProbeTarget(port={self.port}, accepted={self.accepted})"
