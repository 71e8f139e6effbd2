"""The background queue: libraries' jobs, run in a bounded share of each event-loop pass.

A job is a library's background work (a promise settling, `run_on_background`, a coroutine's
start, a `callAsync` result): a Python callable that enters the library's runtime. Each library
has its own FIFO queue (a library runs its jobs in the order it queued them); the queues are
served round-robin, one job from each in turn, so a library that floods its queue delays its own
work, not another library's.

Jobs run from one loop callback per pass. It runs at most the jobs queued before it began (what
those jobs queue waits for the next pass, as with `loop.call_soon`), and stops starting new ones
once `SHARE` seconds of the pass are used: the loop then reads sockets and serves commands
before it goes on. However many jobs are queued, clients keep being served.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

#: How long background jobs may run in one loop pass before the loop serves clients again (a
#: job that has started runs to its end, under its own deadline).
SHARE = 0.005


class JobQueue:
    """Per-library FIFO queues of jobs, run round-robin from a loop callback."""

    def __init__(self, call_soon: Callable[[Callable[[], Any]], None]) -> None:
        self._call_soon = call_soon  # the host's: defers until a loop runs
        self._queues: dict[Any, deque[Callable[[], Any]]] = {}  # by library, in arrival order
        self._scheduled = False

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def add(self, owner: Any, job: Callable[[], Any]) -> None:
        """Queue `job` behind `owner`'s earlier jobs."""
        queue = self._queues.get(owner)
        if queue is None:
            queue = self._queues[owner] = deque()
        queue.append(job)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self._run)

    def _run(self) -> None:
        """One pass's share: round-robin over the queues, the jobs queued before it began."""
        self._scheduled = False
        due = {owner: len(queue) for owner, queue in self._queues.items()}
        stop = time.monotonic() + SHARE
        try:
            while due:
                for owner in list(due):
                    queue = self._queues[owner]
                    job = queue.popleft()
                    if not queue:
                        del self._queues[owner]
                    due[owner] -= 1
                    if not due[owner] or owner not in self._queues:
                        del due[owner]
                    job()
                    if time.monotonic() >= stop:
                        return
        finally:
            if self._queues and not self._scheduled:
                self._scheduled = True
                self._call_soon(self._run)

