"""Reads: which keys each command looks up with lookupKeyRead (a miss sends `keymiss`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jshost.errors import StoreErrors

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


def streams(args: Sequence[bytes]) -> list[bytes]:
    """XREAD / XREADGROUP: the keys after STREAMS (half of what follows it)."""
    for i in range(1, len(args)):
        if args[i].lower() == b"streams":
            rest = args[i + 1 :]
            return list(rest[: len(rest) // 2])
    return []


def _xread_twice(args: Sequence[bytes]) -> list[bytes]:
    # XREAD looks every stream up twice: once while parsing the ids, once while reading.
    keys = streams(args)
    return keys + keys


def _set_get(args: Sequence[bytes]) -> list[bytes]:
    # SET ... GET reads the old value first (getGenericCommand); plain SET only writes.
    return [args[1]] if any(a.lower() == b"get" for a in args[3:]) else []


def _bitfield(args: Sequence[bytes]) -> list[bytes]:
    # BITFIELD with only GET operations looks its key up for reading; with SET/INCRBY, writing.
    writes = any(a.lower() in (b"set", b"incrby") for a in args[2:])
    return [] if writes else list(args[1:2])


_K1 = _at(1)

#: Command (lower case; `container|sub` for subcommands) → the keys it looks up for reading.
READS: dict[bytes, Keys] = {
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
    b"xreadgroup": streams,
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
ERRORS_AFTER_LOOKUP = StoreErrors.AFTER_LOOKUP
