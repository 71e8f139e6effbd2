"""Active expiry for the embedded store: keys whose time has come go even if nobody looks.

fakeredis only drops an expired key when a command looks it up (lazy expiry). One timer, armed on
the running event loop for the soonest expiry time of any database, deletes the due keys and
reports `expired` for each (with no session). Precision: the timer fires ~1 ms after the key's
expiry time (event-loop timer resolution), or as soon as the loop is free if it is busy; without a
running loop (plain synchronous use) expiry stays lazy. Redis's own active expiry samples keys at
10 Hz, so it is never more precise than this.
"""

from __future__ import annotations

import asyncio
import math
import time

from fakeredis import FakeServer

from jshost.store.embedded.events import KeyspaceEvents

_SLACK = 0.001  # seconds after a key's expiry time that the timer fires


class ActiveExpiry:
    """The expiry timer of one embedded store."""

    def __init__(self, server: FakeServer, events: KeyspaceEvents) -> None:
        self.server = server
        self.events = events
        self.dirty = False  # an expiry was stored since the timer was armed
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf
        self.loop: asyncio.AbstractEventLoop | None = None  # where the timer is armed

    def arm(self) -> None:
        """(Re)arm the timer for the soonest expiry stored in any database. Without a running
        event loop there is no timer: keys then expire lazily, on access."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.dirty = True  # armed by the first command run under a loop
            return
        self.dirty = False
        heaps = [db._expiry_heap for db in list(self.server.dbs.values())]
        earliest = min((heap[0][0] for heap in heaps if heap), default=None)
        timer = self._timer
        if timer is not None:
            if earliest is not None and self.loop is loop and self._at <= earliest:
                return  # it fires soon enough already
            timer.cancel()  # too late, or on a loop that is gone
            self._timer, self.loop, self._at = None, None, math.inf
        if earliest is None:
            return
        # Redis expires a key once its time has passed; the slack makes sure it has.
        delay = max(0.0, earliest - time.time()) + _SLACK
        self._at = earliest
        self.loop = loop
        self._timer = loop.call_later(delay, self._expire_due)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire_due(self) -> None:
        """The timer: delete every key whose time has come, report `expired` (no session)."""
        self._timer = None
        self._at = math.inf
        now = time.time()
        events = self.events
        outer, events.sink = events.sink, []
        try:
            for db in list(self.server.dbs.values()):
                db.time = now  # what `expired()` compares with (each command sets it too)
                db._remove_expired()  # `TrackedDatabase` reports each key it drops
        finally:
            expired, events.sink = events.sink, outer
        if expired:
            events.deliver(None, expired)
        self.dirty = True
        self.arm()
