"""Blocked clients of the embedded store: BLPOP & co. park on the event loop, not in fakeredis.

A blocking command first runs as a non-blocking one (`StoreSocket._blocking`); when it finds
nothing, its session parks a `Waiter` here, on the keys it waits for, and awaits it. A write to
one of those keys (`TrackedDatabase.notify_watch`) marks the key ready; after each command the
store serves the ready keys (`serve`), retrying the parked commands oldest first, as Redis does
(handleClientsBlockedOnKeys). CLIENT UNBLOCK, run by another session, is answered the same way.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from jshost.store.embedded.database import TrackedDatabase, Waiter

if TYPE_CHECKING:
    from jshost.store.embedded.session import EmbeddedSession


class BlockedClients:
    """The parked sessions of one embedded store, and the keys written that they wait on."""

    def __init__(self) -> None:
        # Keys written since the last serve that someone waits on, and CLIENT UNBLOCK targets.
        self.ready: dict[tuple[TrackedDatabase, bytes], None] = {}
        self.unblock: dict[EmbeddedSession, None] = {}
        self.parked: dict[EmbeddedSession, Waiter] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serve_scheduled = False
        self._serving = False

    def serve(self) -> None:
        """Retry the commands of clients blocked on keys written since the last call, oldest
        first."""
        if self._serving or not (self.ready or self.unblock):
            return  # nothing to do, or a retry's own writes: the loop below picks those up
        self._serving = True
        try:
            self._check_unblocked()
            while self.ready:
                ready, self.ready = self.ready, {}
                for db, key in ready:
                    self._serve_key(db, key)
        finally:
            self._serving = False

    def key_ready(self, db: TrackedDatabase, key: bytes) -> None:
        self.ready[(db, key)] = None

    def unblock_requested(self, session: EmbeddedSession) -> None:
        if session in self.parked:
            self.unblock[session] = None

    def serve_later(self) -> None:
        """After a `call` (inside an atomic section), serve blocked clients once it is over."""
        pending = self.ready or self.unblock
        if pending and not self._serve_scheduled and self._loop is not None:
            self._serve_scheduled = True
            self._loop.call_soon(self._scheduled_serve)

    def park(self, waiter: Waiter, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.parked[waiter.session] = waiter
        for key in waiter.keys:
            waiter.db.waiters.setdefault(key, deque()).append(waiter)

    def unpark(self, waiter: Waiter) -> None:
        if self.parked.get(waiter.session) is waiter:
            del self.parked[waiter.session]
        for key in waiter.keys:
            queue = waiter.db.waiters.get(key)
            if queue is None:
                continue
            try:
                queue.remove(waiter)
            except ValueError:
                pass
            if not queue:
                del waiter.db.waiters[key]

    def retry_args(self, session: EmbeddedSession, args: list[bytes]) -> list[bytes]:
        """The command to retry when keys change. XREAD's `$` means "after the last entry when
        the command blocked", so it is pinned to that id now."""
        if args[0].lower() != b"xread":
            return args
        try:
            at = next(i for i, a in enumerate(args) if i > 0 and a.lower() == b"streams")
        except StopIteration:
            return args
        count = (len(args) - at - 1) // 2
        pinned = list(args)
        for j in range(count):
            if pinned[at + 1 + count + j] == b"$":
                pinned[at + 1 + count + j] = _last_id(session, args[at + 1 + j])
        return pinned

    def _scheduled_serve(self) -> None:
        self._serve_scheduled = False
        self.serve()

    def _serve_key(self, db: TrackedDatabase, key: bytes) -> None:
        for waiter in list(db.waiters.get(key, ())):
            if waiter.future.done():
                continue
            reply, timeout = waiter.session.run(waiter.args)
            if timeout is None:  # served (or failed): the client gets this reply
                self.unpark(waiter)
                waiter.future.set_result(reply)

    def _check_unblocked(self) -> None:
        """Answer the parked sessions that CLIENT UNBLOCK was aimed at."""
        targets, self.unblock = self.unblock, {}
        for session in targets:
            waiter = self.parked.get(session)
            reply = session.unblocked_reply()
            if waiter is None or reply is None or waiter.future.done():
                continue
            self.unpark(waiter)
            waiter.future.set_result(reply)  # TIMED_OUT for UNBLOCK ... TIMEOUT


def _last_id(session: EmbeddedSession, key: bytes) -> bytes:
    info, _ = session.run([b"XINFO", b"STREAM", key])
    if isinstance(info, dict):
        last = info.get(b"last-generated-id")
        if isinstance(last, bytes):
            return last
    return b"0-0"
