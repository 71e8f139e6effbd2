"""fakeredis replies typed as Redis 7 types them over RESP3, and worded as Redis words them.

Sessions of the embedded store are pinned to RESP3, but fakeredis still flattens some types (sets
sent as arrays, verbatim strings sent as bulk, maps sent as flat arrays) and words some errors its
own way: `typed` turns its raw replies into `jshost.replies` values, `fix_reply` / `fix_exec`
restore what it lost, command by command (checked against redis-server; see the tests), and
`ERROR_FIXES` rewords its errors.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from fakeredis._helpers import SimpleError, SimpleString

from jshost.errors import StoreErrors
from jshost.replies import ErrorReply, Push, SetReply, Status, StoreReply, Verbatim

#: The Redis version the embedded server behaves as (fakeredis switches behaviour on it).
REDIS_VERSION: tuple[int, int, int] = (7, 2, 4)

_PLAIN = frozenset((bytes, int, float, bool, type(None)))  # exact types passed through as they are
_TYPED = frozenset((Status, ErrorReply, SetReply, Verbatim, Push))  # built here already typed




def typed(value: Any) -> Any:
    """A fakeredis reply (RESP3 mode) as `jshost.replies` values."""
    kind = type(value)
    if kind in _PLAIN or kind in _TYPED:
        return value
    if kind is list or kind is tuple:
        return [v if type(v) in _PLAIN else typed(v) for v in value]
    if kind is dict:
        return {typed(k): typed(v) for k, v in value.items()}
    if isinstance(value, SimpleString):
        return Status(value.value)
    if isinstance(value, SimpleError):
        return ErrorReply(value.value)
    if isinstance(value, str):  # fakeredis' text in maps (XINFO, HELLO): bulk strings on the wire
        return value.encode()
    if isinstance(value, (set, frozenset)):
        return SetReply(typed(v) for v in value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, int):  # IntEnum and friends
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {typed(k): typed(v) for k, v in value.items()}
    raise TypeError(f"fakeredis reply of unexpected type {kind.__name__}: {value!r}")


def _as_set(reply: Any) -> Any:
    return SetReply(reply) if type(reply) is list else reply


def _as_verbatim(reply: Any) -> Any:
    return Verbatim(reply, "txt") if type(reply) is bytes else reply


def _client_lines(reply: Any) -> Any:
    """CLIENT INFO / CLIENT LIST: verbatim text, each client's line ending in a newline."""
    if type(reply) is not bytes:
        return reply
    return Verbatim(reply if reply.endswith(b"\n") or not reply else reply + b"\n", "txt")


def _pairs_to_map(reply: Any) -> Any:
    """A flat [k1, v1, k2, v2, ...] array that Redis sends as a map."""
    if type(reply) is not list or len(reply) % 2:
        return reply
    return dict(zip(reply[::2], reply[1::2]))


def _xinfo_stream(reply: Any) -> Any:
    """XINFO STREAM [FULL]: a map; with FULL its groups, their PELs' consumers, are maps too."""
    info = _pairs_to_map(reply)
    if type(info) is dict and type(info.get(b"groups")) is list:
        groups = [_pairs_to_map(g) for g in info[b"groups"]]
        for group in groups:
            if type(group) is dict and type(group.get(b"consumers")) is list:
                group[b"consumers"] = [_pairs_to_map(c) for c in group[b"consumers"]]
        info[b"groups"] = groups
    return info


def _empty_map_to_null(reply: Any) -> Any:
    """XREAD / XREADGROUP that found nothing: a null, not an empty map."""
    return None if reply == {} else reply


def _xpending(reply: Any) -> Any:
    """XPENDING summary: each consumer's count is a bulk string in Redis."""
    if type(reply) is list and len(reply) == 4 and type(reply[3]) is list:
        consumers = [[c[0], b"%d" % c[1]] if type(c[1]) is int else c for c in reply[3]]
        return [*reply[:3], consumers]
    return reply


def _acl_getuser(reply: Any) -> Any:
    user = _pairs_to_map(reply)
    if type(user) is dict and type(user.get(b"flags")) is list:
        user[b"flags"] = SetReply(user[b"flags"])
    return user


def _hello(reply: Any) -> Any:
    if type(reply) is dict:
        reply[b"server"] = b"redis"
        reply[b"version"] = ".".join(map(str, REDIS_VERSION)).encode()
    return reply


def _empty_to_null(reply: Any) -> Any:
    return None if reply == b"" else reply


#: Command name (as fakeredis files it) → how to restore the RESP3 type of its reply where fakeredis
#: differs from Redis 7 answering over RESP3 (checked against redis-server; see the tests).
_REPLY_FIXES: dict[str, Callable[[Any], Any]] = {
    "smembers": _as_set,
    "sinter": _as_set,
    "sunion": _as_set,
    "sdiff": _as_set,
    "spop": _as_set,  # with a count
    "info": _as_verbatim,
    "client info": _client_lines,
    "client list": _client_lines,
    "client getname": _empty_to_null,
    "xinfo stream": _xinfo_stream,
    "xread": _empty_map_to_null,
    "xreadgroup": _empty_map_to_null,
    "xpending": _xpending,
    "acl getuser": _acl_getuser,
    "hello": _hello,
}


def _zrandmember(args: list[bytes], reply: Any) -> Any:
    """ZRANDMEMBER without a count answers one member (or null), not a list."""
    if len(args) == 2 and type(reply) is list:
        return reply[0] if reply else None
    return reply


def _hrandfield(args: list[bytes], reply: Any) -> Any:
    """HRANDFIELD with a count on a missing key answers an empty array, not a null."""
    return [] if len(args) > 2 and reply is None else reply


#: Fixes that need the arguments too.
_ARGS_FIXES: dict[str, Callable[[list[bytes], Any], Any]] = {
    "zrandmember": _zrandmember,
    "hrandfield": _hrandfield,
}


def _reply_only(fix: Callable[[Any], Any], _args: list[bytes], reply: Any) -> Any:
    return fix(reply)


def _fix_index() -> dict[bytes, Any]:
    """`_REPLY_FIXES` and `_ARGS_FIXES` by the command's bytes name (containers: a dict by sub),
    so that finding out that a reply needs no fix costs one lookup."""
    index: dict[bytes, Any] = {}
    fixes: dict[str, Callable[[list[bytes], Any], Any]] = dict(_ARGS_FIXES)
    for name, reply_fix in _REPLY_FIXES.items():
        fixes[name] = functools.partial(_reply_only, reply_fix)
    for name, fix in fixes.items():
        parent, _, sub = name.encode().partition(b" ")
        if sub:
            index.setdefault(parent, {})[sub] = fix
        else:
            index[parent] = fix
    return index


_FIX_INDEX = _fix_index()


def fix_reply(args: list[bytes], reply: Any) -> Any:
    """`reply` to `args` with the RESP3 types fakeredis lost put back."""
    fix = _FIX_INDEX.get(args[0].lower())
    if fix is None or type(reply) is ErrorReply:
        return reply
    if type(fix) is dict:
        fix = fix.get(args[1].lower()) if len(args) > 1 else None
        if fix is None:
            return reply
    return fix(args, reply)


#: fakeredis error texts that Redis 7 words differently.
ERROR_FIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(StoreErrors.EXPIRE_TIME_FAKEREDIS), StoreErrors.EXPIRE_TIME),
    (re.compile(StoreErrors.BUSYGROUP_FAKEREDIS), StoreErrors.BUSYGROUP),
)



def fix_exec(queued: list[list[bytes]], reply: StoreReply) -> StoreReply:
    """Restore types inside EXEC's array, command by command."""
    if type(reply) is not list or len(reply) != len(queued):
        return reply
    return [fix_reply(args, r) for args, r in zip(queued, reply, strict=True)]
