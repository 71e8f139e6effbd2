"""Writes: which events each command notifies, from what it did (its `CommandFacts`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from jshost.store.keyspace_events.facts import MISSING, CommandFacts, KeyEvent
from jshost.store.keyspace_events.reads import streams

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
    return bool(f.reply == 1)


#: Command (lower case; `container|sub` for subcommands) → its write events.
WRITES: dict[bytes, Rule] = {
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
    b"xreadgroup": _new_consumers(lambda f: list(dict.fromkeys(streams(f.args)))),
    b"xclaim": _new_consumers(lambda f: [f.args[1]]),
    b"xautoclaim": _new_consumers(lambda f: [f.args[1]]),
    # hyperloglog
    b"pfadd": _one(b"pfadd", _is_one),
    b"pfmerge": _one(b"pfadd"),
}

#: Writes that send no keyspace event of their own (Redis notifies nothing for FLUSHDB /
#: FLUSHALL / SWAPDB, nor for XACK): known, so they do not fall back to the store's names.
SILENT: frozenset[bytes] = frozenset(
    (b"flushdb", b"flushall", b"swapdb", b"xack", b"pfdebug", b"pfselftest")
)

_warned: set[bytes] = set()  # unknown commands already logged
