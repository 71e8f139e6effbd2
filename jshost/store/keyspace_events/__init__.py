"""Redis 7's keyspace events for a command, derived from what the command did.

A store that is not a real Redis (the embedded fakeredis store) has to name keyspace events as
Redis names them, for keyspace triggers: `incrby` for INCR, `set` + `expire` for SETEX,
`lpush` then `lpop` then `del` for an LMOVE that empties its source, `keymiss` for a read of a
missing key, and so on. This package is that knowledge, as tables (`reads`, `writes`), with no
store in it: the store
describes one command (`CommandFacts`: its arguments, its reply, the state of its keys before and
after it ran, the keys it modified, the keys it found expired) and `redis_events` answers the
`KeyEvent`s Redis 7.0 sends for it, in Redis's order.

How Redis decides, and so how the tables are built (t_string.c, t_list.c, db.c, ... in 7.0):

* Write events (`writes.WRITES`) come from the command's own `notifyKeyspaceEvent` calls: mostly one
  named event per written key, sent only when the command changed something (SADD that added,
  LREM that removed, ...), plus a `del` when a container command left its key empty.
* `keymiss` (`reads.READS`) comes from `lookupKeyRead*` finding nothing: commands that read a
  key look it up that way (GET, LRANGE, HGET, SINTERSTORE's sources, COPY's source, SET ... GET,
  ...);
  commands that write look up with `lookupKeyWrite`, which never sends `keymiss` (INCR, DEL,
  LPOP, RENAME, ...). Read lookups happen before writes, in argument order.
* `expired` for a key a command found expired (lazy expiry) comes at its lookup: just before its
  `keymiss` for a read key, otherwise before the command's write events.
* A command that fails sends nothing, except the `keymiss` of the lookups it made before failing
  (`ERR no such key`, `NOGROUP` and `WRONGTYPE` errors come after the lookup).

Everything was checked against redis-server 7.0.15 (tests/test_keyspace_events.py runs the same
commands on a real server and compares). A command with no entry here falls back to the store's
own event name for the keys it modified (logged once at debug level).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from jshost.store.keyspace_events.facts import MISSING, CommandFacts, KeyEvent, KeyState
from jshost.store.keyspace_events.reads import ERRORS_AFTER_LOOKUP, READS
from jshost.store.keyspace_events.writes import SILENT, WRITES

LOG = logging.getLogger(__name__)

__all__ = [
    "EVENT_CLASSES",
    "MISSING",
    "CommandFacts",
    "KeyEvent",
    "KeyState",
    "command_name",
    "event_enabled",
    "is_known",
    "notify_flags",
    "redis_events",
]


_warned: set[bytes] = set()  # unknown commands already logged

#: Commands whose table entries are per subcommand.
_CONTAINERS = frozenset((b"xgroup", b"xinfo", b"object", b"memory"))


def command_name(args: Sequence[bytes]) -> bytes:
    """The table name of `args`: `name`, or `container|sub` for a command with subcommands."""
    name = args[0].lower()
    if len(args) > 1 and name in _CONTAINERS:
        return name + b"|" + args[1].lower()
    return name


def is_known(args: Sequence[bytes]) -> bool:
    """Whether the tables know `args` (unknown commands fall back to the store's events)."""
    name = command_name(args)
    return name in READS or name in WRITES or name in SILENT


def redis_events(f: CommandFacts) -> list[KeyEvent]:
    """The keyspace events Redis 7 sends for the command `f` describes, in Redis's order."""
    if not f.args:
        return []
    name = command_name(f.args)
    reads = READS.get(name)
    write = WRITES.get(name)
    events: list[KeyEvent] = []
    expired = dict.fromkeys(f.expired)  # each lazily expired key is notified once

    def notify_expired(key: bytes) -> None:
        if key in expired:
            del expired[key]
            events.append(f.ev(b"expired", key))

    if f.error is not None:
        # Only the lookups made before the error notified: up to the first key that exists.
        if reads is not None and f.error.startswith(ERRORS_AFTER_LOOKUP):
            for key in reads(f.args):
                notify_expired(key)
                if f.existed(key):
                    break
                events.append(f.ev(b"keymiss", key))
        events.extend(f.ev(b"expired", key) for key in expired)
        return events

    if reads is not None:
        for key in reads(f.args):
            notify_expired(key)
            if not f.existed(key):
                events.append(f.ev(b"keymiss", key))
    events.extend(f.ev(b"expired", key) for key in expired)  # keys looked up for writing
    if write is not None:
        events.extend(write(f))
    elif reads is None and name not in SILENT:
        events.extend(_fallback(f, name))
    return events


def _fallback(f: CommandFacts, name: bytes) -> list[KeyEvent]:
    """An unknown command: the store's own event name for each key it modified."""
    if not f.modified or f.fallback is None:
        return []
    if name not in _warned:
        _warned.add(name)
        LOG.debug(
            "no Redis keyspace events known for %r: using %r for the keys it modified",
            name.decode(errors="replace"),
            f.fallback.decode(errors="replace"),
        )
    return [f.ev(f.fallback, key) for key in dict.fromkeys(f.modified)]


# ------------------------------------------------------------------------------------------------
# Classes of events (notify-keyspace-events)
# ------------------------------------------------------------------------------------------------


def _classes() -> dict[bytes, bytes]:
    table = {
        b"g": b"del expire persist rename_from rename_to copy_to move_from move_to restore new",
        b"$": b"set setrange incrby incrbyfloat append setbit pfadd",
        b"l": b"lpush rpush lpop rpop linsert lset ltrim lrem sortstore",
        b"s": b"sadd srem spop sinterstore sunionstore sdiffstore",
        b"h": b"hset hdel hincrby hincrbyfloat",
        b"z": b"zadd zincr zrem zpopmin zpopmax zremrangebyscore zremrangebyrank "
        b"zremrangebylex zunionstore zinterstore zdiffstore zrangestore geosearchstore "
        b"georadiusstore",
        b"t": b"xadd xtrim xdel xsetid xgroup-create xgroup-setid xgroup-destroy "
        b"xgroup-createconsumer xgroup-delconsumer",
        b"x": b"expired",
        b"e": b"evicted",
        b"m": b"keymiss",
    }
    return {event: flag for flag, events in table.items() for event in events.split()}


#: Event → its class flag in `notify-keyspace-events`; any other event counts as a module's (d).
EVENT_CLASSES: dict[bytes, bytes] = _classes()

_ALL_CLASSES = b"g$lshzxetd"  # what `A` stands for (not `m` nor `n`)


def notify_flags(config: bytes) -> frozenset[bytes]:
    """`notify-keyspace-events` as a set of one-letter flags, `A` expanded."""
    flags = {bytes((c,)) for c in config}
    if b"A" in flags:
        flags.update(bytes((c,)) for c in _ALL_CLASSES)
    return frozenset(flags)


def event_enabled(flags: frozenset[bytes], event: bytes) -> bool:
    """Whether `flags` (from `notify_flags`) select `event`'s class."""
    return EVENT_CLASSES.get(event, b"d") in flags
