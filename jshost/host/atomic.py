"""The atomic section ("locked", docs/architecture.md) and the tokens of sync clients.

JS runs on the event-loop thread, so being in the atomic section is a matter of bookkeeping: while
one is open, the host serves no other command. What it records is what JS may do meanwhile: which
sync client is live (its token), with which function flags, in which database, and whether
blocking is allowed. The store hears when a section begins and ends (a remote store drains its
connections first, and holds other clients' commands back until the end).
"""

from __future__ import annotations

from collections.abc import Callable

from jshost.store import Store


class AtomicSection:
    """The one atomic section of a host: open or not, and its live sync client."""

    def __init__(self, store: Store, limit: Callable[[], float | None]) -> None:
        self._store = store
        self._limit = limit  # how long a section may last (seconds; None: no limit)
        # An in-process store waits for nothing inside a section: it needs no limit.
        self._limited = not store.in_process
        self.held = False
        self.token = 0  # the live sync client's token (valid only while held)
        self.flags = 0
        self.db = 0
        self.allow_block = False
        self._seq = 0

    def __repr__(self) -> str:
        return (f"AtomicSection(held={self.held}, token={self.token}, flags={self.flags}, "
                f"db={self.db}, allow_block={self.allow_block})")

    def enter(self, flags: int, db: int, allow_block: bool) -> int:
        """Open the section (or stay in it) for a new sync client; returns its token."""
        self._seq += 1
        if not self.held:
            self._store.begin_atomic(self._limit() if self._limited else None)
        self.held, self.token = True, self._seq
        self.flags, self.db, self.allow_block = flags, db, allow_block
        return self._seq

    def exit(self) -> None:
        """Close the section; the sync client's token stops being valid."""
        if self.held:
            self.held, self.token = False, 0
            self._store.end_atomic()

    def is_live(self, token: int) -> bool:
        return self.held and token == self.token


def async_token(flags: int, db: int) -> int:
    """An async client carries the flags and database of the call that made it (`block()`
    checks OOM against the flags and runs commands in that database)."""
    return db << 8 | flags


def decode_async_token(token: int) -> tuple[int, int]:
    """(flags, db) of an async client's token."""
    return token & 0xFF, token >> 8
