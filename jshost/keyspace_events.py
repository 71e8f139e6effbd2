"""Redis 7's keyspace events for a command, derived from what the command did.

A store that is not a real Redis (the embedded fakeredis store) has to name keyspace events as
Redis names them, for keyspace triggers (SPEC §7): `incrby` for INCR, `set` + `expire` for SETEX,
`lpush` then `lpop` then `del` for an LMOVE that empties its source, `keymiss` for a read of a
missing key, and so on. This module is that knowledge, as tables, with no store in it: the store
describes one command (`CommandFacts`: its arguments, its reply, the state of its keys before and
after it ran, the keys it modified, the keys it found expired) and `redis_events` answers the
`KeyEvent`s Redis 7.0 sends for it, in Redis's order.

How Redis decides, and so how the tables are built (t_string.c, t_list.c, db.c, ... in 7.0):

* Write events (`_WRITES`) come from the command's own `notifyKeyspaceEvent` calls: mostly one
  named event per written key, sent only when the command changed something (SADD that added,
  LREM that removed, ...), plus a `del` when a container command left its key empty.
* `keymiss` (`_READS`) comes from `lookupKeyRead*` finding nothing: commands that read a key look
  it up that way (GET, LRANGE, HGET, SINTERSTORE's sources, COPY's source, SET ... GET, ...);
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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


# ------------------------------------------------------------------------------------------------
# Reads: which keys a command looks up with lookupKeyRead (a miss sends `keymiss`)
# ------------------------------------------------------------------------------------------------

Keys = Callable[[Sequence[bytes]], list[bytes]]


def _at(*positions: int) -> Keys:
    return lambda args: [args[i] for i in positions if i < len(args)]


def _from(start: int) -> Keys:
    return lambda args: list(args[start:])


def _numkeys(at: int) -> Keys:
    """`numkeys key [key ...]` with the count at `args[at]` (ZUNIONSTORE, SINTERCARD, ...)."""

    def keys(args: Sequence[bytes]) -> list[bytes]:
        try:
            count = int(args[at])
        except (IndexError, ValueError):
            return []
        return list(args[at + 1 : at + 1 + max(count, 0)])

    return keys


def _streams(args: Sequence[bytes]) -> list[bytes]:
    """XREAD / XREADGROUP: the keys after STREAMS (half of what follows it)."""
    for i in range(1, len(args)):
        if args[i].lower() == b"streams":
            rest = args[i + 1 :]
            return list(rest[: len(rest) // 2])
    return []


def _xread_twice(args: Sequence[bytes]) -> list[bytes]:
    # XREAD looks every stream up twice: once while parsing the ids, once while reading.
    keys = _streams(args)
    return keys + keys


def _set_get(args: Sequence[bytes]) -> list[bytes]:
    # SET ... GET reads the old value first (getGenericCommand); plain SET only writes.
    return [args[1]] if any(a.lower() == b"get" for a in args[3:]) else []


def _bitfield(args: Sequence[bytes]) -> list[bytes]:
    # BITFIELD with only GET operations looks its key up for reading; with SET/INCRBY, writing.
    writes = any(a.lower() in (b"set", b"incrby") for a in args[2:])
    return [] if writes else args[1:2]


_K1 = _at(1)

#: Command (lower case; `container|sub` for subcommands) → the keys it looks up for reading.
_READS: dict[bytes, Keys] = {
    # strings
    b"get": _K1,
    b"getdel": _K1,
    b"getex": _K1,
    b"getset": _K1,
    b"set": _set_get,
    b"mget": _from(1),
    b"strlen": _K1,
    b"getrange": _K1,
    b"substr": _K1,
    b"getbit": _K1,
    b"bitcount": _K1,
    b"bitpos": _K1,
    b"bitfield": _bitfield,
    b"bitfield_ro": _K1,
    b"lcs": _at(1, 2),
    b"bitop": _from(3),
    # generic
    b"exists": _from(1),
    b"touch": _from(1),
    b"type": _K1,
    b"ttl": _K1,
    b"pttl": _K1,
    b"expiretime": _K1,
    b"pexpiretime": _K1,
    b"dump": _K1,
    b"copy": _K1,
    b"sort": _K1,
    b"sort_ro": _K1,
    # lists
    b"lrange": _K1,
    b"llen": _K1,
    b"lindex": _K1,
    b"lpos": _K1,
    # hashes
    b"hget": _K1,
    b"hgetall": _K1,
    b"hmget": _K1,
    b"hexists": _K1,
    b"hlen": _K1,
    b"hkeys": _K1,
    b"hvals": _K1,
    b"hstrlen": _K1,
    b"hrandfield": _K1,
    b"hscan": _K1,
    # sets
    b"smembers": _K1,
    b"sismember": _K1,
    b"smismember": _K1,
    b"scard": _K1,
    b"srandmember": _K1,
    b"sscan": _K1,
    b"sinter": _from(1),
    b"sunion": _from(1),
    b"sdiff": _from(1),
    b"sintercard": _numkeys(1),
    b"sinterstore": _from(2),
    b"sunionstore": _from(2),
    b"sdiffstore": _from(2),
    # sorted sets
    b"zrange": _K1,
    b"zrangebyscore": _K1,
    b"zrangebylex": _K1,
    b"zrevrange": _K1,
    b"zrevrangebyscore": _K1,
    b"zrevrangebylex": _K1,
    b"zscore": _K1,
    b"zmscore": _K1,
    b"zcard": _K1,
    b"zcount": _K1,
    b"zlexcount": _K1,
    b"zrank": _K1,
    b"zrevrank": _K1,
    b"zrandmember": _K1,
    b"zscan": _K1,
    b"zunion": _numkeys(1),
    b"zinter": _numkeys(1),
    b"zdiff": _numkeys(1),
    b"zintercard": _numkeys(1),
    b"zunionstore": _numkeys(2),
    b"zinterstore": _numkeys(2),
    b"zdiffstore": _numkeys(2),
    b"zrangestore": _at(2),
    # geo (sorted sets underneath)
    b"geopos": _K1,
    b"geodist": _K1,
    b"geohash": _K1,
    b"georadius": _K1,
    b"georadius_ro": _K1,
    b"georadiusbymember": _K1,
    b"georadiusbymember_ro": _K1,
    b"geosearch": _K1,
    b"geosearchstore": _at(2),
    # streams
    b"xrange": _K1,
    b"xrevrange": _K1,
    b"xlen": _K1,
    b"xread": _xread_twice,
    b"xreadgroup": _streams,
    b"xpending": _K1,
    b"xack": _K1,
    b"xclaim": _K1,
    b"xautoclaim": _K1,
    b"xinfo|stream": _at(2),
    b"xinfo|groups": _at(2),
    b"xinfo|consumers": _at(2),
    # hyperloglog (PFMERGE looks its destination up for reading too, first)
    b"pfcount": _from(1),
    b"pfmerge": _from(1),
}

#: Errors that a command answers after its lookups (so their `keymiss` events were sent).
_ERRORS_AFTER_LOOKUP = ("ERR no such key", "NOGROUP", "WRONGTYPE")


# ------------------------------------------------------------------------------------------------
# Writes: what each command notifies
# ------------------------------------------------------------------------------------------------

Events = Iterator[KeyEvent]
Rule = Callable[[CommandFacts], Iterable[KeyEvent]]

_EXPIRE_OPTIONS = (b"ex", b"px", b"exat", b"pxat")


def _one(event: bytes, when: Callable[[CommandFacts], bool] | None = None) -> Rule:
    """`event` on the first key when the command succeeded (and `when` holds)."""

    def rule(f: CommandFacts) -> Events:
        if when is None or when(f):
            yield f.ev(event, f.args[1])

    return rule


def _counted(event: bytes, *, emptied: bool = True) -> Rule:
    """`event` on the first key when the integer reply is positive (SADD, LREM, ZREM, ...);
    then `del` if the command emptied the key."""

    def rule(f: CommandFacts) -> Events:
        key = f.args[1]
        if f.count() > 0:
            yield f.ev(event, key)
            if emptied and f.gone(key):
                yield f.ev(b"del", key)

    return rule


def _popped(event: bytes) -> Rule:
    """LPOP / SPOP / ZPOPMIN on the first key: `event` if something came out, `del` if that
    emptied the key."""

    def rule(f: CommandFacts) -> Events:
        key = f.args[1]
        if f.reply is not None and f.reply != []:
            yield f.ev(event, key)
            if f.gone(key):
                yield f.ev(b"del", key)

    return rule


def _popped_from_reply(left: bytes, right: bytes, *, by_arg: tuple[bytes, bytes] | None) -> Rule:
    """BLPOP / LMPOP / BZPOPMIN / ZMPOP: the key is the first element of the reply. `by_arg`:
    the argument (LEFT/MIN) that picks `left` over `right`; None picks `left` always."""

    def rule(f: CommandFacts) -> Events:
        reply = f.reply
        if not isinstance(reply, (list, tuple)) or not reply or not isinstance(reply[0], bytes):
            return
        key = reply[0]
        event = left
        if by_arg is not None:
            event = left if f.has(by_arg[0]) else right
        yield f.ev(event, key)
        if f.gone(key):
            yield f.ev(b"del", key)

    return rule


def _stored(event: bytes, dst_at: int = 1) -> Rule:
    """The *STORE commands: `event` if the destination now holds a value, else `del` if it
    held one before (an empty result deletes it)."""

    def rule(f: CommandFacts) -> Events:
        dst = f.args[dst_at]
        if f.exists(dst):
            yield f.ev(event, dst)
        elif f.existed(dst):
            yield f.ev(b"del", dst)

    return rule


def _store_option(event: bytes) -> Rule:
    """GEORADIUS[BYMEMBER] / SORT with STORE|STOREDIST: `_stored` on the key after the option
    (the last one wins, as in Redis's parsing)."""

    def rule(f: CommandFacts) -> Events:
        dst = None
        for i, arg in enumerate(f.args[2:-1], start=2):
            if arg.lower() in (b"store", b"storedist"):
                dst = f.args[i + 1]
        if dst is None:
            return
        if f.exists(dst):
            yield f.ev(event, dst)
        elif f.existed(dst):
            yield f.ev(b"del", dst)

    return rule


def _set(f: CommandFacts) -> Events:
    key = f.args[1]
    if f.has(b"nx") and f.existed(key) or f.has(b"xx") and not f.existed(key):
        return  # the condition failed: nothing written (SET ... GET still read the key)
    yield f.ev(b"set", key)
    if f.has(*_EXPIRE_OPTIONS):
        yield f.ev(b"expire", key)


def _set_expire(f: CommandFacts) -> Events:
    yield f.ev(b"set", f.args[1])
    yield f.ev(b"expire", f.args[1])


def _mset(f: CommandFacts) -> Events:
    if f.args[0].lower() == b"msetnx" and f.reply != 1:
        return
    for key in f.args[1::2]:
        yield f.ev(b"set", key)


def _getdel(f: CommandFacts) -> Events:
    if f.existed(f.args[1]):
        yield f.ev(b"del", f.args[1])


def _getex(f: CommandFacts) -> Events:
    key = f.args[1]
    if not f.existed(key):
        return
    if f.has(*_EXPIRE_OPTIONS):
        yield f.ev(b"del" if not f.exists(key) else b"expire", key)  # a time in the past deletes
    elif f.has(b"persist") and f.before[key].has_ttl:
        yield f.ev(b"persist", key)


def _setrange(f: CommandFacts) -> Events:
    if len(f.args) > 3 and f.args[3]:  # an empty value changes nothing and notifies nothing
        yield f.ev(b"setrange", f.args[1])


def _bitfield_write(f: CommandFacts) -> Events:
    if any(a.lower() in (b"set", b"incrby") for a in f.args[2:]):
        yield f.ev(b"setbit", f.args[1])


def _bitop(f: CommandFacts) -> Events:
    dst = f.args[2]
    if f.exists(dst):
        yield f.ev(b"set", dst)
    elif f.existed(dst):
        yield f.ev(b"del", dst)


def _del(f: CommandFacts) -> Events:
    done: set[bytes] = set()
    for key in f.args[1:]:
        if key not in done and f.existed(key):
            done.add(key)
            yield f.ev(b"del", key)


def _expire(f: CommandFacts) -> Events:
    if f.reply == 1:
        key = f.args[1]
        yield f.ev(b"expire" if f.exists(key) else b"del", key)  # a time in the past deletes


def _rename(f: CommandFacts) -> Events:
    src, dst = f.args[1], f.args[2]
    if f.reply and src != dst:  # OK, or RENAMENX's 1; renaming a key to itself notifies nothing
        yield f.ev(b"rename_from", src)
        yield f.ev(b"rename_to", dst)


def _option_value(f: CommandFacts, option: bytes) -> bytes | None:
    for i in range(len(f.args) - 2, 0, -1):
        if f.args[i].lower() == option:
            return f.args[i + 1]
    return None


def _db_arg(value: bytes | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _copy(f: CommandFacts) -> Events:
    if f.reply == 1:
        yield f.ev(b"copy_to", f.args[2], _db_arg(_option_value(f, b"db"), f.db))


def _move(f: CommandFacts) -> Events:
    if f.reply == 1:
        yield f.ev(b"move_from", f.args[1])
        yield f.ev(b"move_to", f.args[1], _db_arg(f.args[2], f.db))


def _restore(f: CommandFacts) -> Events:
    key = f.args[1]
    if f.exists(key):
        yield f.ev(b"restore", key)
    elif f.existed(key):  # REPLACE with a TTL already in the past: the old value is deleted
        yield f.ev(b"del", key)


def _push(event: bytes, *, only_existing: bool = False) -> Rule:
    def rule(f: CommandFacts) -> Events:
        if not only_existing or f.count() > 0:  # LPUSHX / RPUSHX on a missing key: nothing
            yield f.ev(event, f.args[1])

    return rule


def _ltrim(f: CommandFacts) -> Events:
    key = f.args[1]
    if f.existed(key):
        yield f.ev(b"ltrim", key)
        if f.gone(key):
            yield f.ev(b"del", key)


def _move_element(src_end: bytes | None, dst_end: bytes | None) -> Rule:
    """LMOVE / BLMOVE (ends from the arguments) and RPOPLPUSH / BRPOPLPUSH (right to left):
    Redis pushes on the destination first, then notifies the pop, then the source's `del`."""

    def rule(f: CommandFacts) -> Events:
        if f.reply is None:
            return
        src, dst = f.args[1], f.args[2]
        wherefrom = src_end or f.args[3].lower()
        whereto = dst_end or f.args[4].lower()
        yield f.ev(b"lpush" if whereto == b"left" else b"rpush", dst)
        yield f.ev(b"lpop" if wherefrom == b"left" else b"rpop", src)
        if f.gone(src):
            yield f.ev(b"del", src)

    return rule


def _smove(f: CommandFacts) -> Events:
    src, dst = f.args[1], f.args[2]
    if f.reply != 1 or src == dst:
        return
    yield f.ev(b"srem", src)
    if f.gone(src):
        yield f.ev(b"del", src)
    if f.after.get(dst, MISSING).size > f.before.get(dst, MISSING).size:  # not there already
        yield f.ev(b"sadd", dst)


def _zadd(event: bytes) -> Rule:
    """ZADD / GEOADD: `zincr` with INCR when it applied; else `zadd` when a member was added or
    its score changed (the reply counts only additions without CH: then the key's modified)."""

    def rule(f: CommandFacts) -> Events:
        key = f.args[1]
        if f.has(b"incr"):
            if f.reply is not None:
                yield f.ev(b"zincr", key)
        elif f.count() > 0 or key in f.modified:
            yield f.ev(event, key)

    return rule


def _xadd(f: CommandFacts) -> Events:
    key = f.args[1]
    if f.reply is None:  # NOMKSTREAM on a missing stream
        return
    yield f.ev(b"xadd", key)
    # MAXLEN / MINID trimming notifies `xtrim` only when it removed entries.
    trimmed = f.after.get(key, MISSING).size < f.before.get(key, MISSING).size + 1
    if trimmed and f.has(b"maxlen", b"minid"):
        yield f.ev(b"xtrim", key)


def _new_consumers(key_of: Callable[[CommandFacts], list[bytes]]) -> Rule:
    """XREADGROUP / XCLAIM / XAUTOCLAIM create their consumer when it is new."""

    def rule(f: CommandFacts) -> Events:
        for key in key_of(f):
            before = f.before.get(key, MISSING).consumers
            if f.after.get(key, MISSING).consumers - before:
                yield f.ev(b"xgroup-createconsumer", key)

    return rule


def _xgroup_delconsumer(f: CommandFacts) -> Events:
    key = f.args[2]
    if len(f.args) > 4 and (f.args[3], f.args[4]) in f.before.get(key, MISSING).consumers:
        yield f.ev(b"xgroup-delconsumer", key)


def _xgroup(event: bytes, *, counted: bool = False) -> Rule:
    def rule(f: CommandFacts) -> Events:
        if not counted or f.count() > 0:
            yield f.ev(event, f.args[2])

    return rule


def _positive(f: CommandFacts) -> bool:
    return f.count() > 0


def _is_one(f: CommandFacts) -> bool:
    return f.reply == 1


#: Command (lower case; `container|sub` for subcommands) → its write events.
_WRITES: dict[bytes, Rule] = {
    # strings
    b"set": _set,
    b"setex": _set_expire,
    b"psetex": _set_expire,
    b"setnx": _one(b"set", _is_one),
    b"mset": _mset,
    b"msetnx": _mset,
    b"getset": _one(b"set"),
    b"getdel": _getdel,
    b"getex": _getex,
    b"append": _one(b"append"),
    b"incr": _one(b"incrby"),
    b"decr": _one(b"incrby"),
    b"incrby": _one(b"incrby"),
    b"decrby": _one(b"incrby"),
    b"incrbyfloat": _one(b"incrbyfloat"),
    b"setrange": _setrange,
    b"setbit": _one(b"setbit"),
    b"bitfield": _bitfield_write,
    b"bitop": _bitop,
    # generic
    b"del": _del,
    b"unlink": _del,
    b"expire": _expire,
    b"pexpire": _expire,
    b"expireat": _expire,
    b"pexpireat": _expire,
    b"persist": _one(b"persist", _is_one),
    b"rename": _rename,
    b"renamenx": _rename,
    b"copy": _copy,
    b"move": _move,
    b"restore": _restore,
    b"sort": _store_option(b"sortstore"),
    # lists
    b"lpush": _push(b"lpush"),
    b"rpush": _push(b"rpush"),
    b"lpushx": _push(b"lpush", only_existing=True),
    b"rpushx": _push(b"rpush", only_existing=True),
    b"linsert": _one(b"linsert", _positive),
    b"lset": _one(b"lset"),
    b"ltrim": _ltrim,
    b"lrem": _counted(b"lrem"),
    b"lpop": _popped(b"lpop"),
    b"rpop": _popped(b"rpop"),
    b"blpop": _popped_from_reply(b"lpop", b"lpop", by_arg=None),
    b"brpop": _popped_from_reply(b"rpop", b"rpop", by_arg=None),
    b"lmpop": _popped_from_reply(b"lpop", b"rpop", by_arg=(b"left", b"right")),
    b"blmpop": _popped_from_reply(b"lpop", b"rpop", by_arg=(b"left", b"right")),
    b"lmove": _move_element(None, None),
    b"blmove": _move_element(None, None),
    b"rpoplpush": _move_element(b"right", b"left"),
    b"brpoplpush": _move_element(b"right", b"left"),
    # hashes
    b"hset": _one(b"hset"),
    b"hmset": _one(b"hset"),
    b"hsetnx": _one(b"hset", _is_one),
    b"hdel": _counted(b"hdel"),
    b"hincrby": _one(b"hincrby"),
    b"hincrbyfloat": _one(b"hincrbyfloat"),
    # sets
    b"sadd": _counted(b"sadd", emptied=False),
    b"srem": _counted(b"srem"),
    b"spop": _popped(b"spop"),
    b"smove": _smove,
    b"sinterstore": _stored(b"sinterstore"),
    b"sunionstore": _stored(b"sunionstore"),
    b"sdiffstore": _stored(b"sdiffstore"),
    # sorted sets
    b"zadd": _zadd(b"zadd"),
    b"zincrby": _one(b"zincr"),
    b"zrem": _counted(b"zrem"),
    b"zpopmin": _popped(b"zpopmin"),
    b"zpopmax": _popped(b"zpopmax"),
    b"bzpopmin": _popped_from_reply(b"zpopmin", b"zpopmin", by_arg=None),
    b"bzpopmax": _popped_from_reply(b"zpopmax", b"zpopmax", by_arg=None),
    b"zmpop": _popped_from_reply(b"zpopmin", b"zpopmax", by_arg=(b"min", b"max")),
    b"bzmpop": _popped_from_reply(b"zpopmin", b"zpopmax", by_arg=(b"min", b"max")),
    b"zremrangebyscore": _counted(b"zremrangebyscore"),
    b"zremrangebyrank": _counted(b"zremrangebyrank"),
    b"zremrangebylex": _counted(b"zremrangebylex"),
    b"zunionstore": _stored(b"zunionstore"),
    b"zinterstore": _stored(b"zinterstore"),
    b"zdiffstore": _stored(b"zdiffstore"),
    b"zrangestore": _stored(b"zrangestore"),
    b"geoadd": _zadd(b"zadd"),  # GEOADD runs ZADD underneath
    b"geosearchstore": _stored(b"geosearchstore"),
    b"georadius": _store_option(b"georadiusstore"),
    b"georadiusbymember": _store_option(b"georadiusstore"),
    # streams
    b"xadd": _xadd,
    b"xtrim": _counted(b"xtrim", emptied=False),
    b"xdel": _counted(b"xdel", emptied=False),
    b"xsetid": _one(b"xsetid"),
    b"xgroup|create": _xgroup(b"xgroup-create"),
    b"xgroup|setid": _xgroup(b"xgroup-setid"),
    b"xgroup|destroy": _xgroup(b"xgroup-destroy", counted=True),
    b"xgroup|createconsumer": _xgroup(b"xgroup-createconsumer", counted=True),
    b"xgroup|delconsumer": _xgroup_delconsumer,
    b"xreadgroup": _new_consumers(lambda f: list(dict.fromkeys(_streams(f.args)))),
    b"xclaim": _new_consumers(lambda f: [f.args[1]]),
    b"xautoclaim": _new_consumers(lambda f: [f.args[1]]),
    # hyperloglog
    b"pfadd": _one(b"pfadd", _is_one),
    b"pfmerge": _one(b"pfadd"),
}

#: Writes that send no keyspace event of their own (Redis notifies nothing for FLUSHDB /
#: FLUSHALL / SWAPDB, nor for XACK): known, so they do not fall back to the store's names.
_SILENT: frozenset[bytes] = frozenset(
    (b"flushdb", b"flushall", b"swapdb", b"xack", b"pfdebug", b"pfselftest")
)

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
    return name in _READS or name in _WRITES or name in _SILENT


def redis_events(f: CommandFacts) -> list[KeyEvent]:
    """The keyspace events Redis 7 sends for the command `f` describes, in Redis's order."""
    if not f.args:
        return []
    name = command_name(f.args)
    reads = _READS.get(name)
    write = _WRITES.get(name)
    events: list[KeyEvent] = []
    expired = dict.fromkeys(f.expired)  # each lazily expired key is notified once

    def notify_expired(key: bytes) -> None:
        if key in expired:
            del expired[key]
            events.append(f.ev(b"expired", key))

    if f.error is not None:
        # Only the lookups made before the error notified: up to the first key that exists.
        if reads is not None and f.error.startswith(_ERRORS_AFTER_LOOKUP):
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
    elif reads is None and name not in _SILENT:
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
