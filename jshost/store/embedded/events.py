"""The embedded store's keyspace events: named as Redis 7 names them, heard and published.

fakeredis names its notifications after the command (`incr`, `mset`, `setex`) and never sends
`expired`, `evicted` or `keymiss`. The store replaces them with Redis 7's events, computed by
`jshost.store.keyspace_events` from each command's arguments, reply, and the state of its keys
before and after it ran (`StoreSocket._run_command` gathers those facts). They go, in order, to
the store's listener as `on_event(session, db, event, key)`, synchronously, once the command (a
whole EXEC or script) has run and before its reply is returned -- so a listener is atomic with
the write, as a sync keyspace trigger must be. `session` is the session whose command caused the
event (a client's, or one the host runs JS commands through: the host mutes those), or None for
active expiry. The same events are published on `__keyspace@<db>__:<key>` /
`__keyevent@<db>__:<event>` when `notify-keyspace-events` selects them, as Redis does
(fakeredis' own names are not published).

* `expired`: fakeredis drops an expired key when a command looks it up; the store reports that
  (lazy expiry, attributed to the session whose command found it, before that command's events).
  The active-expiry timer (`jshost.store.embedded.expiry`) reports the keys it deletes with no
  session.
* `evicted`: never sent: the embedded store has no maxmemory, so nothing is evicted.
* `keymiss`: from the commands that read keys (the `jshost.store.keyspace_events` table), for
  keys that were missing before the command ran.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fakeredis import FakeServer
from fakeredis._core._database import Database
from fakeredis._helpers import compile_pattern
from fakeredis.model import XStream

from jshost.store.base import StoreListener
from jshost.store.keyspace_events import (
    MISSING,
    KeyEvent,
    KeyState,
    event_enabled,
    notify_flags,
)

if TYPE_CHECKING:
    from jshost.store.embedded.database import TrackedDatabase
    from jshost.store.embedded.session import EmbeddedSession

LOG = logging.getLogger(__name__)

#: Commands that only run other commands (each of which reports its own events).
RUNS_OTHERS = frozenset(("exec", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"))

#: Commands that delete their key when given an expiry time already past (checkAlreadyExpired);
#: SET ... PXAT <past> keeps it until it is expired, in Redis too.
PAST_EXPIRY_DELETES = frozenset(("expire", "pexpire", "expireat", "pexpireat", "getex"))

#: Commands that drop keys without expiring them.
FLUSHES = frozenset(("flushdb", "flushall"))

_NOTIFY_CONFIG = b"notify-keyspace-events"


def key_state(item: Any) -> KeyState:
    """What `jshost.store.keyspace_events` needs to know of a stored item (None: no key)."""
    if item is None:
        return MISSING
    value = item.value
    try:
        size = len(value)
    except TypeError:
        size = 0
    if not size and not isinstance(value, (bytes, XStream)):
        # fakeredis may leave an emptied container behind (LMPOP); to its commands, as to
        # Redis, that key does not exist. (An empty stream does exist.)
        return MISSING
    consumers: frozenset[tuple[bytes, bytes]] = frozenset()
    if isinstance(value, XStream):  # XREADGROUP / XCLAIM notify the consumers they create
        consumers = frozenset(
            (name, consumer)
            for name, group in value._groups.items()
            for consumer in group.consumers
        )
    return KeyState(True, size, item.expireat is not None, consumers)


@dataclass(eq=False)
class CommandContext:
    """The command being run: the keys of its database found expired while it runs."""

    db: Database
    expired: list[bytes] = field(default_factory=list)
    silent: bool = False  # FLUSHDB / FLUSHALL: the keys they drop are not "expired"


def wire_args(args: Sequence[Any]) -> list[bytes]:
    """fakeredis' parsed arguments as the words a client sent."""
    return [a if type(a) is bytes else str(a).encode() for a in args]


_SIG_WORDS: dict[str, list[bytes]] = {}


def sig_words(name: str) -> list[bytes]:
    """`xgroup create` → [b"xgroup", b"create"] (cached: it runs for every command)."""
    words = _SIG_WORDS.get(name)
    if words is None:
        words = _SIG_WORDS[name] = name.encode().split(b" ")
    return words


class KeyspaceEvents:
    """Where the events of one embedded store go (see the module docstring)."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.listener: StoreListener | None = None
        # The events of the command being run (None between commands), and the command itself
        # (for the keys it finds expired).
        self.sink: list[KeyEvent] | None = None
        self.context: CommandContext | None = None
        self._notify: tuple[bytes, frozenset[bytes]] = (b"", frozenset())  # parsed config
        self._patterns: dict[bytes, re.Pattern[bytes]] = {}

    def notify_flags(self) -> frozenset[bytes]:
        """`notify-keyspace-events` (CONFIG SET may change it), parsed."""
        config = self.server.config
        raw = config.get(_NOTIFY_CONFIG)
        if raw is None:  # CONFIG SET keeps the name as the client spelt it
            raw = next((v for k, v in config.items() if k.lower() == _NOTIFY_CONFIG), b"")
        if raw != self._notify[0]:
            self._notify = (raw, notify_flags(raw))
        return self._notify[1]

    def wanted(self) -> bool:
        """Whether anyone can see keyspace events (else the store does not compute them)."""
        return self.listener is not None or bool(self.notify_flags())

    def db_index(self, db: TrackedDatabase) -> int:
        if db.index is None:  # SWAPDB swaps contents, not objects: the number never changes
            db.index = next(i for i, d in self.server.dbs.items() if d is db)
        return db.index

    def key_expired(self, db: TrackedDatabase, key: bytes) -> None:
        """`db` dropped `key` because it expired: report `expired` at the right place."""
        if not self.wanted():
            return
        context = self.context
        if context is not None:
            if context.silent:
                return  # flushed, not expired: Redis notifies nothing
            if context.db is db:
                context.expired.append(key)  # the command's own events place it (its lookup)
                return
        self.emit([KeyEvent(self.db_index(db), b"expired", key)])

    def emit(self, events: list[KeyEvent]) -> None:
        """Events of the command being run, delivered when it is over."""
        if not events:
            return
        if self.sink is not None:
            self.sink.extend(events)
        else:  # not inside a command: only expiry gets here
            self.deliver(None, events)

    def deliver(self, session: EmbeddedSession | None, events: list[KeyEvent]) -> None:
        listener = self.listener
        flags = self.notify_flags()
        publish = bool(flags) and bool(self.server.subscribers or self.server.psubscribers)
        for event in events:
            if listener is not None:
                try:
                    listener.on_event(session, event.db, event.event, event.key)
                except Exception:  # the listener's failure must not lose the command's reply
                    LOG.exception("keyspace event listener failed on %r", event)
            if publish and event_enabled(flags, event.event):
                self._publish(event, flags)

    def _publish(self, event: KeyEvent, flags: frozenset[bytes]) -> None:
        """Publish `event` as Redis does: keyspace channel (K), then keyevent channel (E)."""
        messages = []
        if b"K" in flags:
            messages.append((b"__keyspace@%d__:%s" % (event.db, event.key), event.event))
        if b"E" in flags:
            messages.append((b"__keyevent@%d__:%s" % (event.db, event.event), event.key))
        server = self.server
        for channel, message in messages:
            for sock in list(server.subscribers.get(channel, ())):
                sock.put_response([b"message", channel, message])
            for pattern, socks in list(server.psubscribers.items()):
                regex = self._patterns.get(pattern)
                if regex is None:
                    regex = self._patterns[pattern] = compile_pattern(pattern)
                if regex.match(channel):
                    for sock in list(socks):
                        sock.put_response([b"pmessage", pattern, channel, message])
