"""The atomic section ("locked", SPEC §0.4) and the tokens of sync clients.

JS runs on the event-loop thread, so holding the lock is a matter of bookkeeping: while it is
held, the host serves no other command. What it records is what JS may do meanwhile: which sync
client is live (its token), with which function flags, in which database, and whether blocking
is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


def _nothing() -> None:
    pass


@dataclass
class Lock:
    # The store's atomic-section hooks (a remote store drains and holds back other commands).
    on_enter: Callable[[], None] = field(default=_nothing, repr=False)
    on_exit: Callable[[], None] = field(default=_nothing, repr=False)
    held: bool = False
    token: int = 0  # the live sync client's token (valid only while held)
    flags: int = 0
    db: int = 0
    allow_block: bool = False
    _seq: int = 0

    def enter(self, flags: int, db: int, allow_block: bool) -> int:
        """Take the lock for a new sync client; returns its token."""
        self._seq += 1
        if not self.held:
            self.on_enter()
        self.held, self.token = True, self._seq
        self.flags, self.db, self.allow_block = flags, db, allow_block
        return self._seq

    def exit(self) -> None:
        """Release the lock; the sync client's token stops being valid."""
        if self.held:
            self.held, self.token = False, 0
            self.on_exit()

    def is_live(self, token: int) -> bool:
        return self.held and token == self.token


def async_token(flags: int, db: int) -> int:
    """An async client carries the flags and database of the call that made it (`block()`
    checks OOM against the flags and runs commands in that database)."""
    return db << 8 | flags


def decode_async_token(token: int) -> tuple[int, int]:
    """(flags, db) of an async client's token."""
    return token & 0xFF, token >> 8
