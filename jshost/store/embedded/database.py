"""The embedded store's databases: fakeredis `Database`s that report what the store must know.

fakeredis calls `Database.notify_watch(key)` for every key a command writes (and FLUSHDB / MOVE /
SWAPDB), and drops expired keys in two places, `Database.__getitem__` and
`Database._remove_expired`. `TrackedDatabase` hooks those: every written or dropped key is
measured again for `used_memory` (`DatasetSize`), a write to a key a blocked client waits on
marks it ready (`BlockedClients`) and tells the clients tracking it (`tracking`), an expired key
is reported as an `expired` event (`KeyspaceEvents`) and counted, a read or write stamps the
key's access time (OBJECT IDLETIME), and a new expiry time may have to bring the active-expiry
timer forward (`ActiveExpiry`).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from fakeredis._core._database import Database

from jshost.replies import StoreReply

if TYPE_CHECKING:
    from jshost.store.embedded.session import EmbeddedSession
    from jshost.store.embedded.store import EmbeddedStore


class TimedOut:
    """Type of `TIMED_OUT`: a parked command's outcome when CLIENT UNBLOCK ... TIMEOUT hits it."""

    __slots__ = ()


TIMED_OUT: Final = TimedOut()


@dataclass(eq=False)
class Waiter:
    """A session parked in `execute` until one of `keys` is written (or its timeout)."""

    session: EmbeddedSession
    args: list[bytes]  # what to retry: the command, with XREAD's `$` pinned to real ids
    db: TrackedDatabase
    keys: tuple[bytes, ...]
    future: asyncio.Future[StoreReply | TimedOut] = field(repr=False)


class TrackedDatabase(Database):
    """A fakeredis `Database` that tells the store when a key someone waits on is written, and
    when a key expires."""

    def __init__(self, lock: Any, store: EmbeddedStore) -> None:
        super().__init__(lock)
        self.waiters: dict[bytes, deque[Waiter]] = {}
        self.store = store
        self.index: int | None = None  # its number in `server.dbs`, found on first need
        # When each key was last read or written (OBJECT IDLETIME). Entries of deleted keys are
        # dropped in bulk once they outnumber the keys (a re-created key is stamped anew).
        self.touched: dict[bytes, float] = {}

    # -- expiry: fakeredis drops expired keys in these two places; we report each one ----------

    def __getitem__(self, key: bytes) -> Any:
        item = self._dict[key]
        if self.expired(item):
            del self._dict[key]
            self.store.dataset.touched(self, key)
            self.store.key_expired(self, key)
            raise KeyError(key)
        if self.store.touching:
            self.touched[key] = self.time
        return item

    def __setitem__(self, key: bytes, value: Any) -> None:
        self._dict[key] = value  # (Database.__setitem__, inline: it runs for every write)
        self.schedule_expiry(key, value.expireat)
        touched = self.touched
        touched[key] = self.time or time.time()  # (0 before the first command)
        if len(touched) > 2 * len(self._dict) + 64:
            self.touched = {k: t for k, t in touched.items() if k in self._dict}

    def _remove_expired(self) -> None:
        heap = self._expiry_heap  # (expiry, key), soonest first; stale entries are skipped
        while heap and heap[0][0] < self.time:
            _, key = heapq.heappop(heap)
            item = self._dict.get(key)
            if item is not None and self.expired(item):
                del self._dict[key]
                self.store.dataset.touched(self, key)
                self.store.key_expired(self, key)

    def schedule_expiry(self, key: bytes, expireat: float | None) -> None:
        super().schedule_expiry(key, expireat)
        if expireat is not None:
            self.store.expiry.dirty = True  # the active-expiry timer may have to fire sooner

    def notify_watch(self, key: bytes) -> None:
        super().notify_watch(key)  # WATCH bookkeeping; fakeredis calls this for every write
        self.store.dataset.touched(self, key)
        if key in self.waiters:
            self.store.blocked.key_ready(self, key)
        if self.store.tracking.clients:
            self.store.tracked_key_changed(key)

    def swap(self, other: Database) -> None:
        super().swap(other)  # SWAPDB: every waited-on key of both databases may have changed
        if isinstance(other, TrackedDatabase):
            self.touched, other.touched = other.touched, self.touched
        self.store.dataset.reset()
        for db in (self, other):
            if isinstance(db, TrackedDatabase):
                for key in list(db.waiters):
                    self.store.blocked.key_ready(db, key)
