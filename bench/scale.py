"""Scenario 5: many connections, each with an `RG.FCALLASYNC` waiting on a promise.

    with ParkedCalls(port, 10_000) as parked:      # opens the sockets, parks one call on each
        parked.count                               # how many the server holds (`parked` function)
        ...                                        # measure RSS and scenario 1 meanwhile
        parked.release()                           # `release` resolves them; every reply checked

Each socket costs the benchmark one file descriptor and the server another: both raise their
open-files limit (`procs.raise_nofile`) to the number of connections plus a margin, never past
the hard limit. Connections are opened in batches and the server is asked how many calls it
holds before the next batch, so the listen backlog never overflows.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from bench.scenarios import PARK, PARK_REPLY, PARKED, RELEASE, run_once

BATCH = 500  # connections opened, and calls released, at a time
PARK_TIMEOUT = 60.0
#: File descriptors kept free beyond the parked connections (redis-benchmark, pipes, logs).
FD_MARGIN = 1024


def encode(command: Sequence[str]) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [f"*{len(command)}\r\n".encode()]
    for word in command:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class ParkedCalls:
    """`count` connections to `port`, each with one pending ``RG.FCALLASYNC bench park 0``."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.sockets: list[socket.socket] = []
        self.released_ok = 0

    def __enter__(self) -> Self:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Open the connections batch by batch; return once the server holds every call."""
        request = encode(PARK)
        while len(self.sockets) < self.count:
            for _ in range(min(BATCH, self.count - len(self.sockets))):
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=30.0)
                sock.sendall(request)
                self.sockets.append(sock)
            self.wait_parked(len(self.sockets))

    def parked(self) -> int:
        """How many calls the server holds right now."""
        reply = run_once(self.port, PARKED)
        if isinstance(reply, int):
            return reply
        raise RuntimeError(f"`parked` answered {reply!r}")

    def wait_parked(self, expected: int) -> None:
        deadline = time.monotonic() + PARK_TIMEOUT
        while self.parked() < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server holds {self.parked()} of {expected} calls")
            time.sleep(0.01)

    def release(self) -> int:
        """Resolve every parked call, `BATCH` at a time (one sync call resolving thousands can
        outlast lock-redis-timeout); the number of sockets that got the expected reply."""
        freed = 0
        while freed < len(self.sockets):
            reply = run_once(self.port, [*RELEASE, str(BATCH)])
            if not isinstance(reply, int) or reply == 0:
                raise RuntimeError(f"`release` answered {reply!r} after freeing {freed} calls "
                                   f"of {len(self.sockets)}")
            freed += reply
        self.released_ok = sum(1 for sock in self.sockets if _read_reply(sock) == PARK_REPLY)
        return self.released_ok

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []


def _read_reply(sock: socket.socket, size: int = len(PARK_REPLY)) -> bytes:
    """Read one reply of the expected length (or less, if the server closes or errs)."""
    data = b""
    try:
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                break
            data += chunk
            if data.startswith(b"-") and data.endswith(b"\r\n"):
                break
    except OSError:
        pass
    return data
