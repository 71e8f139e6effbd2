"""What a store tells `jshost.store.keyspace_events` about one command, and what it answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class KeyEvent(NamedTuple):
    """One keyspace event: the database, the event name as Redis sends it, and the key."""

    db: int
    event: bytes
    key: bytes


@dataclass(frozen=True, slots=True)
class KeyState:
    """What a store knows of one key at one moment (before or after a command)."""

    exists: bool = False
    size: int = 0  # elements of a container (stream entries), or a string's length
    has_ttl: bool = False
    consumers: frozenset[tuple[bytes, bytes]] = frozenset()  # streams: (group, consumer) pairs


MISSING = KeyState()


@dataclass(slots=True)
class CommandFacts:
    """One command as it ran, described for `redis_events`.

    `reply` is the command's reply with integers as `int` and nulls as `None` (arrays as lists,
    strings as bytes); it is ignored when `error` is set. `before` and `after` hold the state of
    the keys the command names (COMMAND GETKEYS); a key absent from them counts as missing.
    `modified` lists the keys the store saw the command write, in order; `expired` the keys of
    `db` the command found expired (and deleted) as it looked them up. `fallback` is the event
    name the store would use itself, for commands this module does not know.
    """

    args: Sequence[bytes]
    db: int = 0
    reply: Any = None
    error: str | None = None
    before: Mapping[bytes, KeyState] = field(default_factory=dict)
    after: Mapping[bytes, KeyState] = field(default_factory=dict)
    modified: Sequence[bytes] = ()
    expired: Sequence[bytes] = ()
    fallback: bytes | None = None

    # -- questions the tables ask -----------------------------------------------------------------

    def existed(self, key: bytes) -> bool:
        return self.before.get(key, MISSING).exists

    def exists(self, key: bytes) -> bool:
        return self.after.get(key, MISSING).exists

    def gone(self, key: bytes) -> bool:
        """The command emptied (deleted) a key that existed."""
        return self.existed(key) and not self.exists(key)

    def count(self) -> int:
        """An integer reply (0 for anything else: a null, an array, a status)."""
        reply = self.reply
        return reply if type(reply) is int else 0

    def has(self, *options: bytes) -> bool:
        """Whether one of `options` (lower case) is among the arguments after the name."""
        return any(arg.lower() in options for arg in self.args[1:])

    def ev(self, event: bytes, key: bytes, db: int | None = None) -> KeyEvent:
        return KeyEvent(self.db if db is None else db, event, key)
