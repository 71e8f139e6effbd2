"""The embedded store: one in-process fakeredis server that every session shares.

Every use of fakeredis internals lives in this module (fakeredis is pinned to 2.41.0; the guard
test `test_fakeredis_internals_shape` fails loudly when they change). What is used, and why:

* `FakeSocket._process_command(fields)`: fakeredis' own command path (ACL, arity, MULTI queueing,
  EXECABORT, watches, keyspace notifications) without the RESP encoding and the redis-py client.
  A subclass, `_Socket`, captures its reply:
  - `_decode_result(result)` is called once per command with the raw reply (`SimpleString`,
    `SimpleError`, bytes, int, float, list, dict, str, `NoResponse`): we type it (`_typed`);
  - `put_response(msg)` then queues it; anything else queued (pub/sub messages, subscribe
    confirmations) is a push;
  - `_blocking(timeout, func, shape)` is how every blocking command runs: we never wait in it,
    we run the non-blocking pass and note that the command would have blocked;
  - `_name_to_func(name)` finds a command: we add a few Redis commands fakeredis lacks, and
    replace some it has (below).
* Replaced because they are holes (docs/security.md): DUMP / RESTORE (fakeredis pickles the
  value, so RESTORE ran any code a client sent: Redis' RDB encoding instead, `jshost.store.rdb`
  and `jshost.store.embedded_values`); the Lua commands (fakeredis runs Lua through lupa, when
  it is installed, with the whole Lua library and a door into Python: refused); the ACL
  commands that change or save users and `CONFIG SET aclfile` (they wrote and read any file,
  and could lock every client out: refused). fakeredis' `acl_setuser`, `acl_deluser`,
  `acl_save`, `acl_load` and `config_set` are overridden by name.
* `Database.notify_watch(key)` is called for every key a command writes (and by FLUSHDB/MOVE):
  `_TrackedDatabase` uses it to learn which keys blocked clients wait on became ready.
* `FakeServer.dbs` (a defaultdict of `Database`) gets our `_TrackedDatabase` as its factory.
* Keyspace events (see below): `FakeSocket._run_command(func, sig, args, from_script)` runs each
  command proper (also each command of EXEC and each `redis.call` of a script) and calls
  `_keyspace_notifications(command_items, event)` after writing back; `CommandItem.key` and
  `.is_modified`; `Database._dict` (the raw items), `Item.value` / `.expireat`,
  `Database._expiry_heap` (soonest expiry first), `Database.expired(item)`, and the two places
  fakeredis drops expired keys, `Database.__getitem__` and `Database._remove_expired`;
  `XStream._groups` / `StreamGroup.consumers`; `FakeServer.config`, `.subscribers`,
  `.psubscribers`.

Replies come out typed as RESP3 types them (sessions are pinned to protocol 3); `_REPLY_FIXES`
restores the types fakeredis flattens (sets sent as arrays, verbatim strings sent as bulk).

Keyspace events
---------------
fakeredis names its notifications after the command (`incr`, `mset`, `setex`) and never sends
`expired`, `evicted` or `keymiss`. The store replaces them with Redis 7's events, computed by
`jshost.keyspace_events` from each command's arguments, reply, and the state of its keys before
and after it ran (`_Socket._run_command`). They go, in order, to `EmbeddedStore.on_keyspace_event`
as `(session, db, event, key)`, synchronously, once the command (a whole EXEC or script) has run
and before its reply is returned -- so a listener is atomic with the write, as a sync keyspace
trigger must be (SPEC §7.3). `session` is the session whose command caused the event (a client's,
or the session JS calls through: the host mutes those, §7.4), or None for active expiry. The same
events are published on `__keyspace@<db>__:<key>` / `__keyevent@<db>__:<event>` when
`notify-keyspace-events` selects them, as Redis does (fakeredis' own names are not published).

* `expired`: fakeredis drops an expired key when a command looks it up; the store reports that
  (lazy expiry, attributed to the session whose command found it, before that command's events).
  An active-expiry timer, armed on the running event loop for the soonest TTL of any database,
  deletes due keys with no client access and reports `expired` (session None). Precision: the
  timer fires ~1 ms after the key's expiry time (event-loop timer resolution), or as soon as the
  loop is free if it is busy; without a running loop (plain synchronous use) expiry stays lazy.
  Redis's own active expiry samples keys at 10 Hz, so it is never more precise than this.
* `evicted`: never sent: the embedded store has no maxmemory, so nothing is evicted.
* `keymiss`: from the commands that read keys (the `jshost.keyspace_events` table), for keys that
  were missing before the command ran.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import re
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from fakeredis import FakeServer
from fakeredis._command_args_parsing import Int, Timeout
from fakeredis._commands import SUPPORTED_COMMANDS, Key, Signature
from fakeredis._core._database import CommandItem, Database, Item
from fakeredis._helpers import NoResponse, SimpleError, SimpleString, compile_pattern
from fakeredis._msgs import FLAG_NO_SCRIPT, WRONGTYPE_MSG
from fakeredis._socket import FakeSocket
from fakeredis.model import ExpiringMembersSet, Hash, XStream, get_all_commands_info

from jshost.errors import (
    CONFIG_IMMUTABLE,
    DumpErrors,
    EmbeddedErrors,
    SecurityErrors,
    StoreErrors,
    config_set_failed,
)
from jshost.keyspace_events import (
    MISSING,
    CommandFacts,
    KeyEvent,
    KeyState,
    event_enabled,
    notify_flags,
    redis_events,
)
from jshost.replies import ErrorReply, Push, Reply, SetReply, Status, Verbatim
from jshost.store import rdb
from jshost.store.base import NO_REPLY, PushHandler, Session, Store
from jshost.store.command_table import CommandTable, unknown_command_error
from jshost.store.embedded_commands import (
    CONFIG_ALIASES,
    CONFIG_DEFAULTS,
    INTEGER_CONFIG,
    SIGNATURES,
    ServerCommands,
    info_text,
    rss_bytes,
)
from jshost.store.embedded_geo import GeoCommands
from jshost.store.embedded_monitor import CommandMonitor, Histogram
from jshost.store.embedded_tracking import INVALIDATE, TrackingCommands, TrackingTable
from jshost.store.embedded_tracking import SIGNATURES as TRACKING_SIGNATURES
from jshost.store.embedded_values import UnsupportedValue, from_stored, to_stored
from jshost.store.values import StoredValue

LOG = logging.getLogger(__name__)

#: The Redis version the embedded server behaves as (fakeredis switches behaviour on it).
REDIS_VERSION: tuple[int, int, int] = (7, 2, 4)

_PENDING: Any = object()  # `_Socket._reply` before the command has produced one
_TIMED_OUT: Any = object()  # a parked command's outcome when CLIENT UNBLOCK ... TIMEOUT hits it
_PLAIN = frozenset((bytes, int, float, bool, type(None)))  # exact types passed through as they are
_TYPED = frozenset((Status, ErrorReply, SetReply, Verbatim, Push))  # built here already typed


# ------------------------------------------------------------------------------------------------
# Typing fakeredis replies
# ------------------------------------------------------------------------------------------------


def _typed(value: Any) -> Any:
    """A fakeredis reply (RESP3 mode) as `jshost.replies` values."""
    kind = type(value)
    if kind in _PLAIN or kind in _TYPED:
        return value
    if kind is list or kind is tuple:
        return [v if type(v) in _PLAIN else _typed(v) for v in value]
    if kind is dict:
        return {_typed(k): _typed(v) for k, v in value.items()}
    if isinstance(value, SimpleString):
        return Status(value.value)
    if isinstance(value, SimpleError):
        return ErrorReply(value.value)
    if isinstance(value, str):  # fakeredis' text in maps (XINFO, HELLO): bulk strings on the wire
        return value.encode()
    if isinstance(value, (set, frozenset)):
        return SetReply(_typed(v) for v in value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, int):  # IntEnum and friends
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_typed(v) for v in value]
    if isinstance(value, dict):
        return {_typed(k): _typed(v) for k, v in value.items()}
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


def _fix_index() -> dict[bytes, Any]:
    """`_REPLY_FIXES` and `_ARGS_FIXES` by the command's bytes name (containers: a dict by sub),
    so that finding out that a reply needs no fix costs one lookup."""
    index: dict[bytes, Any] = {}
    fixes: dict[str, Callable[[list[bytes], Any], Any]] = dict(_ARGS_FIXES)
    for name, fix in _REPLY_FIXES.items():
        fixes[name] = lambda _args, reply, fix=fix: fix(reply)
    for name, fix in fixes.items():
        parent, _, sub = name.encode().partition(b" ")
        if sub:
            index.setdefault(parent, {})[sub] = fix
        else:
            index[parent] = fix
    return index


_FIX_INDEX = _fix_index()


def _fix_reply(args: list[bytes], reply: Any) -> Any:
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
_ERROR_FIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^ERR invalid expire time in (\w+)$"), r"ERR invalid expire time in '\1' command"),
    (re.compile(r"^ERR (BUSYGROUP .*)$"), r"\1"),
)


# ------------------------------------------------------------------------------------------------
# Blocked clients
# ------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Waiter:
    """A session parked in `execute` until one of `keys` is written (or its timeout)."""

    session: EmbeddedSession
    args: list[bytes]  # what to retry: the command, with XREAD's `$` pinned to real ids
    db: _TrackedDatabase
    keys: tuple[bytes, ...]
    future: asyncio.Future[Reply] = field(repr=False)


class _TrackedDatabase(Database):
    """A fakeredis `Database` that tells the store when a key someone waits on is written."""

    def __init__(self, lock: Any, store: EmbeddedStore) -> None:
        super().__init__(lock)
        self.waiters: dict[bytes, deque[_Waiter]] = {}
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
            self.store._key_expired(self, key)
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
                self.store._key_expired(self, key)

    def schedule_expiry(self, key: bytes, expireat: float | None) -> None:
        super().schedule_expiry(key, expireat)
        if expireat is not None:
            self.store._expiry_dirty = True  # the active-expiry timer may have to fire sooner

    def notify_watch(self, key: bytes) -> None:
        super().notify_watch(key)  # WATCH bookkeeping; fakeredis calls this for every write
        if key in self.waiters:
            self.store._key_ready(self, key)
        if self.store.tracking.clients:
            self.store._tracked_key_changed(key)

    def swap(self, other: Database) -> None:
        super().swap(other)  # SWAPDB: every waited-on key of both databases may have changed
        if isinstance(other, _TrackedDatabase):
            self.touched, other.touched = other.touched, self.touched
        for db in (self, other):
            if isinstance(db, _TrackedDatabase):
                for key in list(db.waiters):
                    self.store._key_ready(db, key)


# ------------------------------------------------------------------------------------------------
# Keyspace events
# ------------------------------------------------------------------------------------------------

#: The listener of keyspace events: `(session or None, db, event, key)` (see the module doc).
KeyspaceListener = Callable[["EmbeddedSession | None", int, bytes, bytes], None]

#: Commands that only run other commands (each of which reports its own events).
_RUNS_OTHERS = frozenset(("exec", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"))

#: Commands that delete their key when given an expiry time already past (checkAlreadyExpired);
#: SET ... PXAT <past> keeps it until it is expired, in Redis too.
_PAST_EXPIRY_DELETES = frozenset(("expire", "pexpire", "expireat", "pexpireat", "getex"))

#: fakeredis error texts that differ from Redis' in a way that matters to keyspace events (the
#: error says whether the command had looked its keys up): command → (fakeredis prefix, Redis).
_EVENT_ERROR_FIXES: dict[str, tuple[str, str]] = {
    "xreadgroup": ("ERR The XGROUP subcommand requires the key to exist", "NOGROUP"),
}

_FLUSHES = frozenset(("flushdb", "flushall"))

_NOTIFY_CONFIG = b"notify-keyspace-events"
#: CONFIG SET names the embedded store refuses, as Redis 7 does by default (files it would write
#: or read; fakeredis' ACL SAVE / LOAD used `aclfile`): name -> Redis' reason.
_CONFIG_REFUSED: dict[bytes, str] = {
    **dict.fromkeys((b"aclfile", b"logfile", b"appendfilename", b"appenddirname", b"pidfile",
                     b"unixsocket"), CONFIG_IMMUTABLE),
    **dict.fromkeys((b"dir", b"dbfilename"), SecurityErrors.CONFIG_PROTECTED),
}
_EXPIRY_SLACK = 0.001  # seconds after a key's expiry time that the expiry timer fires


def _key_state(item: Any) -> KeyState:
    """What `jshost.keyspace_events` needs to know of a stored item (None: no key)."""
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
class _CommandContext:
    """The command being run: the keys of its database found expired while it runs."""

    db: Database
    expired: list[bytes] = field(default_factory=list)
    silent: bool = False  # FLUSHDB / FLUSHALL: the keys they drop are not "expired"


def _is_int(value: bytes) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _wire_args(args: Sequence[Any]) -> list[bytes]:
    return [a if type(a) is bytes else str(a).encode() for a in args]


_SIG_WORDS: dict[str, list[bytes]] = {}


def _sig_words(name: str) -> list[bytes]:
    """`xgroup create` → [b"xgroup", b"create"] (cached: it runs for every command)."""
    words = _SIG_WORDS.get(name)
    if words is None:
        words = _SIG_WORDS[name] = name.encode().split(b" ")
    return words


# ------------------------------------------------------------------------------------------------
# Commands fakeredis lacks
# ------------------------------------------------------------------------------------------------

_CONFIG_DEFAULTS: dict[bytes, bytes] = {**CONFIG_DEFAULTS, b"port": b"0", b"timeout": b"0"}


def _extra_signatures() -> dict[str, Signature]:
    """fakeredis `Signature`s for the commands `_Socket` adds (arity, as fakeredis checks it)."""
    return {
        "touch": Signature("touch", "x_touch", (bytes,), (bytes,)),
        "wait": Signature("wait", "x_wait", (Int, Int)),
        "waitaof": Signature("waitaof", "x_waitaof", (Int, Int, Int)),
        "info": Signature("info", "x_info", (), (bytes,)),
        "config get": Signature("config get", "x_config_get", (bytes,), (bytes,)),
        "config resetstat": Signature("config resetstat", "x_config_resetstat", ()),
        "role": Signature("role", "x_role", ()),
        # fakeredis' BLMOVE answers a missing source at once, before it could block: replaced.
        "blmove": Signature(
            "blmove", "x_blmove", (bytes, bytes, bytes, bytes, Timeout), (), flags=FLAG_NO_SCRIPT
        ),
        # COMMAND from jshost's table: Redis 7.2's metadata rather than fakeredis' partial one.
        "command": Signature("command", "x_command", ()),
        "command info": Signature("command info", "x_command_info", (), (bytes,)),
        "command count": Signature("command count", "x_command_count", ()),
        "command list": Signature("command list", "x_command_list", (), (bytes,)),
        "command getkeys": Signature("command getkeys", "x_command_getkeys", (bytes,), (bytes,)),
        "command docs": Signature("command docs", "x_command_docs", (), (bytes,)),
        # Redis' RDB encoding instead of fakeredis' pickles (see the module docstring).
        "dump": Signature("dump", "x_dump", (Key(missing_return=None),)),
        "restore": Signature("restore", "x_restore", (Key(), bytes, bytes), (bytes,)),
        # OBJECT, MEMORY, SLOWLOG, LATENCY, ... (jshost.store.embedded_commands).
        **SIGNATURES,
        # CLIENT TRACKING, CACHING, TRACKINGINFO (jshost.store.embedded_tracking).
        **TRACKING_SIGNATURES,
    }


_EXTRA_SIGNATURES = _extra_signatures()

#: Lua scripting: refused (see the module docstring), whether or not lupa is installed.
_LUA_COMMANDS = frozenset(("eval", "evalsha", "eval_ro", "evalsha_ro", "script", "function",
                           "fcall", "fcall_ro"))
_LUA_SIGNATURES: dict[str, Signature] = {}


def _lua_signature(name: str) -> Signature:
    sig = _LUA_SIGNATURES.get(name)
    if sig is None:
        sig = _LUA_SIGNATURES[name] = Signature(name, "x_no_lua", (), (bytes,))
    return sig


class _Socket(GeoCommands, ServerCommands, TrackingCommands, FakeSocket):
    """A fakeredis connection whose replies are captured typed instead of queued for a client."""

    def __init__(self, server: FakeServer, session: EmbeddedSession) -> None:
        super().__init__(server, 0, client_class=redis.Redis, client_info={"resp": 3})
        self._session = session
        self._reply: Any = _PENDING
        self._delivered = False
        self._would_block: float | None = None  # set by `_blocking` when a command would wait
        self._x_items: list[CommandItem] = []  # the items of the last `_run_command`

    # -- the command path --------------------------------------------------------------------------

    def run(self, args: list[bytes]) -> tuple[Reply, float | None]:
        """Run one command: its typed reply, and its timeout (0 = none) if it would have blocked."""
        self._reply = _PENDING
        self._delivered = False
        self._would_block = None
        store = self._session.store
        outer, store._sink = store._sink, []  # this command's keyspace events (runs may nest)
        # CLIENT NO-TOUCH: this client's commands leave the keys' access times alone (but TOUCH).
        store.touching = not self._no_touch or args[0].lower() == b"touch"
        outer_running, store._running = store._running, self
        started = time.perf_counter_ns()
        try:
            self._process_command(args)
        except Exception as exc:  # a fakeredis bug must not take the client down
            LOG.exception("embedded store failed on %r", args[:1])
            reply: Reply = ErrorReply(StoreErrors.INTERNAL.format(exc=exc))
            would_block = None
        else:
            # Not delivered: SUBSCRIBE and co. (NoResponse), or muted by CLIENT REPLY OFF|SKIP.
            reply = self._reply if self._delivered else NO_REPLY
            would_block = self._would_block
        finally:
            events, store._sink = store._sink, outer
            self._reply = _PENDING
            store.touching = True
            store._running = outer_running
            if store.tracking.clients:
                self._after_tracked_command(args)
        queued = type(reply) is Status and reply == b"QUEUED"
        if would_block is None and not queued:  # queued and parked commands have not run yet
            store._record(args, (time.perf_counter_ns() - started) // 1000, self)
        # Before the reply goes back: a listener (sync trigger) is atomic with the command.
        if events:
            store._deliver(self._session, events)
        if store._expiry_dirty or store._expiry_loop is not None and store._expiry_loop.is_closed():
            store._arm_expiry()
        return reply, would_block

    def _run_command(
        self, func: Callable[..., Any] | None, sig: Signature, args: list[Any], from_script: bool
    ) -> Any:
        # One command proper (also each command of EXEC and each redis.call of a script): note
        # the state of its keys before and after, and turn that into Redis' keyspace events.
        if self._session.store.tracking.clients:
            return self._tracked_run_command(func, sig, args, from_script)
        return self._run_command_proper(func, sig, args, from_script)

    def _tracked_run_command(
        self, func: Callable[..., Any] | None, sig: Signature, args: list[Any], from_script: bool
    ) -> Any:
        """A command run while some client tracks keys: remember what this client read; a
        FLUSHDB / FLUSHALL tells every tracking client to drop everything, once."""
        store = self._session.store
        flush = sig.name in _FLUSHES
        if flush:
            store._flushing = True
        try:
            result = self._run_command_proper(func, sig, args, from_script)
        finally:
            if flush:
                store._flushing = False
        if flush and not isinstance(result, SimpleError):
            for client_id in store.tracking.flushed():
                store._invalidate(client_id, None)
        tracking = store.tracking.clients.get(int(self._client_info["id"]))
        if tracking is not None and tracking.remembers_reads() and not from_script:
            argv = [*_sig_words(sig.name), *_wire_args(args)]
            info = store.command_info().lookup(argv)
            if info is not None and "readonly" in info.flags:
                store.tracking.remember(
                    int(self._client_info["id"]), store.command_info().keys_of(argv)
                )
        return result

    def _after_tracked_command(self, args: list[bytes]) -> None:
        """CLIENT CACHING yes|no holds for the next command only."""
        tracking = self._session.store.tracking.clients.get(int(self._client_info["id"]))
        caching = len(args) > 1 and args[0].lower() == b"client" and args[1].lower() == b"caching"
        if tracking is not None and not caching:
            tracking.caching = None

    def _run_command_proper(
        self, func: Callable[..., Any] | None, sig: Signature, args: list[Any], from_script: bool
    ) -> Any:
        store = self._session.store
        if sig.name in _RUNS_OTHERS or not store._events_wanted():
            result = super()._run_command(func, sig, args, from_script)
            if sig.name in _PAST_EXPIRY_DELETES:
                self._drop_if_expired(args)
            return result
        argv = [*_sig_words(sig.name), *_wire_args(args)]
        db, index = self._db, self._db_num
        keys = list(dict.fromkeys(store.command_info().keys_of(argv)))
        context = _CommandContext(db, silent=sig.name in _FLUSHES)
        outer, store._context = store._context, context
        try:
            # `db.get` drops the keys that have expired (lazy expiry), as Redis' lookups would;
            # it is not an access of its own (OBJECT IDLETIME).
            touching, store.touching = store.touching, False
            before = {key: _key_state(db.get(key)) for key in keys}
            store.touching = touching
            self._x_items = []
            result = super()._run_command(func, sig, args, from_script)
            items, self._x_items = self._x_items, []
            if sig.name in _PAST_EXPIRY_DELETES:
                self._drop_if_expired(args)
        finally:
            store._context = outer
        raw = db._dict  # after: read raw, so that looking expires (and notifies) nothing
        failed = isinstance(result, SimpleError)
        error = None
        if failed:
            error = result.value
            fix = _EVENT_ERROR_FIXES.get(sig.name)
            if fix is not None and error.startswith(fix[0]):
                error = fix[1]
        facts = CommandFacts(
            args=argv,
            db=index,
            reply=None if failed else result,
            error=error,
            before=before,
            after={key: _key_state(raw.get(key)) for key in keys},
            modified=[item.key for item in items if item.is_modified],
            expired=context.expired,
            fallback=sig.name.encode(),
        )
        store._emit(redis_events(facts))
        return result

    def _drop_if_expired(self, args: list[Any]) -> None:
        """EXPIRE / GETEX ... with a time already past: Redis deletes the key at once, fakeredis
        keeps it until a lookup (which would then notify `expired` for it). Delete it now."""
        if not args or type(args[0]) is not bytes:
            return
        item = self._db._dict.get(args[0])
        if item is not None and item.expireat is not None and item.expireat <= self._db.time:
            del self._db._dict[args[0]]

    def _keyspace_notifications(self, command_items: list[CommandItem], event: bytes) -> None:
        # fakeredis' notifications are named after the command: `_run_command` computes Redis'
        # events instead, and needs the items the command touched for its fallback.
        self._x_items = command_items

    def _decode_result(self, result: Any) -> Any:
        # Called once per command with the reply fakeredis built; unless the command sends none
        # (NoResponse, CLIENT REPLY OFF), put_response gets what this returns right after.
        if isinstance(result, NoResponse):
            return result
        self._reply = _typed(result)
        return self._reply

    def put_response(self, msg: Any) -> None:
        if msg is self._reply:
            self._delivered = True  # the reply of the command being run: `run` returns it
            return
        push = Push(_typed(msg))
        handler = self._session.on_push
        if handler is None:
            self._session.pushes.append(push)
        else:
            handler(push)

    def _blocking(
        self,
        timeout: float | None,
        func: Callable[[bool], Any],
        shape: Callable[[Any], Any] | None = None,
    ) -> Any:
        # Never wait here (fakeredis would wait on a thread condition): run the non-blocking pass,
        # and let `execute` wait on the event loop if the command found nothing.
        ret = func(True)
        if ret is None and not self._in_transaction:
            self._would_block = float(timeout or 0)
        return ret if shape is None else shape(ret)

    @property
    def _unblock_reason(self) -> bytes | None:
        return self.__dict__.get("_x_unblock_reason")

    @_unblock_reason.setter
    def _unblock_reason(self, reason: bytes | None) -> None:
        # CLIENT UNBLOCK (run by another session) sets this on the socket it unblocks.
        self.__dict__["_x_unblock_reason"] = reason
        if reason is not None:
            self._session.store._unblock_requested(self._session)

    def _name_to_func(self, cmd_name: str) -> tuple[Callable[..., Any] | None, Signature]:
        sig = _EXTRA_SIGNATURES.get(cmd_name)
        if sig is not None:
            return getattr(self, sig.func_name), sig
        if cmd_name.partition(" ")[0] in _LUA_COMMANDS:
            return self.x_no_lua, _lua_signature(cmd_name)
        return super()._name_to_func(cmd_name)

    # -- state ---------------------------------------------------------------------------------------

    @property
    def db_index(self) -> int:
        return self._db_num

    @property
    def db_object(self) -> _TrackedDatabase:
        return self._db  # type: ignore[return-value]

    @property
    def in_multi(self) -> bool:
        return self._transaction is not None

    def queued_commands(self) -> list[list[bytes]]:
        """The commands MULTI queued, name first (to type EXEC's reply)."""
        return [
            [*(part.encode() for part in sig.name.split(" ")), *args]
            for _, sig, args in self._transaction or ()
        ]

    # HELLO and RESET switch the protocol: the session stays on RESP3 (the host owns the protocol
    # its client speaks, and replies are typed as RESP3 whatever it is).

    def hello(self, *args: bytes) -> Any:
        reply = super().hello(*args)
        self._client_info["resp"] = 3
        return reply

    def reset(self) -> Any:
        reply = super().reset()
        self._client_info["resp"] = 3
        return reply

    # -- fakeredis commands that were holes (docs/security.md) ---------------------------------------

    def x_dump(self, key: CommandItem) -> bytes:
        try:
            return rdb.dump(to_stored(key.value))
        except UnsupportedValue as exc:
            raise SimpleError(DumpErrors.UNSUPPORTED_TYPE.format(kind=exc.kind)) from None
        except rdb.RdbError as exc:
            raise SimpleError(str(exc)) from None

    def x_restore(self, key: CommandItem, ttl: bytes, payload: bytes, *options: bytes) -> Any:
        """RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], checked in Redis'
        order (restoreCommand); IDLETIME and FREQ are accepted and have no effect (no
        eviction)."""
        replace = absttl = False
        idle = freq = None
        i = 0
        while i < len(options):
            word, more = options[i].lower(), len(options) - i - 1
            if word == b"replace":
                replace = True
            elif word == b"absttl":
                absttl = True
            elif word == b"idletime" and more and freq is None:
                i += 1
                idle = Int.decode(options[i])
                if idle < 0:
                    raise SimpleError(DumpErrors.INVALID_IDLETIME)
            elif word == b"freq" and more and idle is None:
                i += 1
                freq = Int.decode(options[i])
                if not 0 <= freq <= 255:
                    raise SimpleError(DumpErrors.INVALID_FREQ)
            else:
                raise SimpleError("ERR syntax error")
            i += 1
        if key and not replace:
            raise SimpleError(DumpErrors.BUSYKEY)
        ttl_ms = Int.decode(ttl)
        if ttl_ms < 0:
            raise SimpleError(DumpErrors.INVALID_TTL)
        try:
            value = from_stored(rdb.load(payload))
        except rdb.RdbError as exc:
            raise SimpleError(str(exc)) from None
        expire_at = None
        if ttl_ms:
            expire_at = ttl_ms / 1000.0 if absttl else self._db.time + ttl_ms / 1000.0
            if expire_at <= self._db.time:  # already expired: only the REPLACE deletes
                if key:
                    key.value = None
                return SimpleString(b"OK")
        key.value = value
        key.expireat = expire_at
        return SimpleString(b"OK")

    def x_no_lua(self, *_args: bytes) -> Any:
        raise SimpleError(SecurityErrors.EMBEDDED_NO_LUA)

    def acl_setuser(self, *_args: bytes) -> Any:
        raise SimpleError(SecurityErrors.EMBEDDED_ACL.format(sub="setuser"))

    def acl_deluser(self, *_args: bytes) -> Any:
        raise SimpleError(SecurityErrors.EMBEDDED_ACL.format(sub="deluser"))

    def acl_save(self, *_args: bytes) -> Any:
        raise SimpleError(SecurityErrors.EMBEDDED_ACL.format(sub="save"))

    def acl_load(self, *_args: bytes) -> Any:
        raise SimpleError(SecurityErrors.EMBEDDED_ACL.format(sub="load"))

    def config_set(self, *args: bytes) -> Any:
        # Names are case-insensitive and kept lower-case (the old ziplist names are aliases).
        names = [CONFIG_ALIASES.get(n.lower(), n.lower()) for n in args[0::2]]
        for name, given, value in zip(names, args[0::2], args[1::2]):
            reason = _CONFIG_REFUSED.get(name)
            if reason is None and name in INTEGER_CONFIG and not _is_int(value):
                reason = EmbeddedErrors.CONFIG_NOT_INTEGER
            if reason is not None:
                raise SimpleError(config_set_failed(given.decode("utf-8", "replace"), reason))
        pairs = [part for pair in zip(names, args[1::2]) for part in pair]
        reply = super().config_set(*pairs, *args[len(pairs):])
        self._session.store._config_changed()
        return reply

    # -- commands fakeredis lacks (run through fakeredis' path: ACL, arity, MULTI queueing) ---------

    def x_touch(self, *keys: bytes) -> int:
        return sum(1 for key in keys if key in self._db)

    def x_wait(self, numreplicas: int, timeout: int) -> int:
        if timeout < 0:
            raise SimpleError("ERR timeout is negative")
        if numreplicas <= 0:
            return 0
        # No replica will ever acknowledge: wait out the timeout, then answer 0 replicas.
        return self._blocking(timeout / 1000.0, lambda _first: None, lambda _none: 0)

    def x_waitaof(self, numlocal: int, numreplicas: int, timeout: int) -> list[int]:
        if timeout < 0:
            raise SimpleError("ERR timeout is negative")
        if numlocal > 0:
            raise SimpleError(
                "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
            )
        if numreplicas <= 0:
            return [0, 0]
        return self._blocking(timeout / 1000.0, lambda _first: None, lambda _none: [0, 0])

    def x_config_get(self, *patterns: bytes) -> dict[bytes, bytes]:
        params = dict(_CONFIG_DEFAULTS)
        params.update({k.lower(): v for k, v in self._server.config.items()})
        params.update({alias: params[name] for alias, name in CONFIG_ALIASES.items()})
        regexes = [compile_pattern(p.lower()) for p in patterns]
        return {k: v for k, v in params.items() if any(r.match(k) for r in regexes)}

    def x_info(self, *sections: bytes) -> bytes:
        return info_text(self._session.store, {s.lower() for s in sections})

    def x_blmove(
        self, source: bytes, destination: bytes, wherefrom: bytes, whereto: bytes, timeout: float
    ) -> Any:
        ends = (wherefrom.lower(), whereto.lower())
        if not all(end in (b"left", b"right") for end in ends):
            raise SimpleError("ERR syntax error")
        from_left, to_left = ends[0] == b"left", ends[1] == b"left"
        return self._blocking(
            timeout, lambda _first: self._blmove_pass(source, destination, from_left, to_left)
        )

    def _blmove_pass(
        self, source: bytes, destination: bytes, from_left: bool, to_left: bool
    ) -> Any:
        """One LMOVE attempt: the element moved, or None when the source is empty (Redis checks
        the destination's type only when there is something to move)."""
        src = CommandItem(source, self._db, item=self._db.get(source), default=[])
        if not isinstance(src.value, list):
            raise SimpleError(WRONGTYPE_MSG)
        if not src.value:
            return None
        dst = src
        if destination != source:
            dst = CommandItem(destination, self._db, item=self._db.get(destination), default=[])
            if not isinstance(dst.value, list):
                raise SimpleError(WRONGTYPE_MSG)
        element = src.value.pop(0 if from_left else -1)
        if to_left:
            dst.value.insert(0, element)
        else:
            dst.value.append(element)
        for item in (src,) if dst is src else (src, dst):
            item.updated()
            item.writeback()
        return element

    def x_role(self) -> list[Any]:
        return [b"master", 0, []]

    # COMMAND: replies are already typed (`_typed` keeps Status/SetReply/Verbatim as they are).

    def _table(self) -> CommandTable:
        return self._session.store.command_info()

    def x_command(self) -> list[Any]:
        return [c.to_resp3() for c in self._table().commands()]

    def x_command_info(self, *names: bytes) -> list[Any]:
        if not names:
            return self.x_command()
        found = (self._table().get(name) for name in names)
        return [c.to_resp3() if c is not None else None for c in found]

    def x_command_count(self) -> int:
        return len(self._table().commands())

    def x_command_list(self, *args: bytes) -> list[bytes]:
        commands = self._table().commands()
        names = [n for c in commands for n in [c.name, *(s.name for s in c.subcommands.values())]]
        if not args:
            return [n.encode() for n in names]
        if len(args) != 3 or args[0].lower() != b"filterby":
            raise SimpleError("ERR syntax error")
        kind, value = args[1].lower(), args[2]
        if kind == b"pattern":
            regex = compile_pattern(value.lower())
            return [n.encode() for n in names if regex.match(n.encode())]
        if kind == b"aclcat":
            cat = "@" + value.decode("utf-8", "replace").lower()
            every = [c for top in commands for c in [top, *top.subcommands.values()]]
            return [c.name.encode() for c in every if cat in c.acl_categories]
        if kind == b"module":
            return []
        raise SimpleError("ERR syntax error")

    def x_command_getkeys(self, *args: bytes) -> list[bytes]:
        table = self._table()
        info = table.lookup(args)
        if info is None:
            raise SimpleError("ERR Invalid command specified")
        if not info.arity_ok(len(args)):
            raise SimpleError("ERR Invalid number of arguments specified for command")
        keys = table.keys_of(args)
        if not keys:
            raise SimpleError("ERR The command has no key arguments")
        return keys

    def x_command_docs(self, *names: bytes) -> dict[bytes, Any]:
        return {}  # no documentation is bundled; an empty map is what a client can cope with


# ------------------------------------------------------------------------------------------------
# Sessions
# ------------------------------------------------------------------------------------------------


class EmbeddedSession(Session):
    """A client connection to the embedded server."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.on_push: PushHandler | None = None
        self.pushes: deque[Push] = deque()
        self._sock = _Socket(store.server, self)
        self._waiter: _Waiter | None = None
        self._closed = False
        store._sessions.add(self)
        store._by_id[self.client_id] = self

    @property
    def db(self) -> int:
        return self._sock.db_index

    @property
    def client_id(self) -> int:
        """The id `CLIENT ID` gives for this session."""
        return int(self._sock._client_info["id"])

    @property
    def closed(self) -> bool:
        """True after `close()`, or once another client's CLIENT KILL hit this session."""
        return self._closed or self._sock._killed

    def call(self, args: Sequence[bytes]) -> Reply:
        reply, _ = self._run(args)
        self.store._serve_later()  # blocked clients are served after the atomic section
        return reply

    async def execute(self, args: Sequence[bytes]) -> Reply:
        reply, timeout = self._run(args)
        self.store.serve_blocked()
        if timeout is None:
            return reply
        return await self._park(list(args), reply, timeout)

    def unblock(self, error: bool) -> bool:
        if self._waiter is None or self._waiter.future.done():
            return False
        self._sock._unblock_reason = b"error" if error else b"timeout"  # (see `_unblocked`)
        self.store.serve_blocked()
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._waiter is not None:
            self._waiter.future.cancel()
        self.store.tracking.disable(self.client_id)
        self._sock.close()

    # -- internals -------------------------------------------------------------------------------

    def _run(self, args: Sequence[bytes]) -> tuple[Reply, float | None]:
        """Run `args` and give its RESP3-typed reply, and its timeout if it would have blocked."""
        args = args if type(args) is list else list(args)
        if not args:
            return NO_REPLY, None
        if self._closed:
            return ErrorReply(StoreErrors.SESSION_CLOSED), None
        sock = self._sock
        queued = sock.queued_commands() if sock.in_multi and args[0].lower() == b"exec" else None
        reply, timeout = sock.run(args)
        if type(reply) is ErrorReply:
            reply = self._fix_error(args, reply)
        elif queued is not None:
            reply = _fix_exec(queued, reply)
        elif not sock.in_multi:  # (in MULTI the reply is QUEUED)
            reply = _fix_reply(args, reply)
        return reply, timeout

    def _fix_error(self, args: list[bytes], reply: ErrorReply) -> ErrorReply:
        """Redis' wording for the errors fakeredis words its own way."""
        if reply.startswith("ERR unknown command '"):
            # Unknown to fakeredis: Redis' unknown command/subcommand text, or its arity error
            # for a container called alone (`CONFIG`).
            table = self.store.command_info()
            return ErrorReply(table.check_command(args) or unknown_command_error(args))
        if reply.startswith(("ERR wrong number of arguments for '", "ERR Wrong number of args")):
            return ErrorReply(self.store.command_info().arity_error(args))
        for pattern, replacement in _ERROR_FIXES:
            fixed, count = pattern.subn(replacement, reply)
            if count:
                return ErrorReply(fixed)
        return reply

    async def _park(self, args: list[bytes], empty: Reply, timeout: float) -> Reply:
        """Wait until a write to one of the command's keys lets it through, or its timeout."""
        store = self.store
        loop = asyncio.get_running_loop()
        waiter = _Waiter(
            session=self,
            args=store._retry_args(self, args),
            db=self._sock.db_object,
            keys=tuple(dict.fromkeys(store.command_info().keys_of(args))),
            future=loop.create_future(),
        )
        store._park(waiter, loop)
        self._waiter = waiter
        self._sock._blocked = True  # visible to CLIENT UNBLOCK and CLIENT LIST
        try:
            async with asyncio.timeout(timeout if timeout > 0 else None):
                reply = await waiter.future
        except TimeoutError:
            return empty
        finally:
            self._waiter = None
            self._sock._blocked = False
            store._unpark(waiter)
        return empty if reply is _TIMED_OUT else reply

    def _unblocked(self) -> Reply | None:
        """The reply for a CLIENT UNBLOCK aimed at this session, or None if there was none."""
        reason, self._sock._unblock_reason = self._sock._unblock_reason, None
        if reason is None:
            return None
        if reason == b"error":
            return ErrorReply(StoreErrors.UNBLOCKED)
        return _TIMED_OUT  # TIMEOUT: answer as the timeout would


def _fix_exec(queued: list[list[bytes]], reply: Reply) -> Reply:
    """Restore types inside EXEC's array, command by command."""
    if type(reply) is not list or len(reply) != len(queued):
        return reply
    return [_fix_reply(args, r) for args, r in zip(queued, reply)]


# ------------------------------------------------------------------------------------------------
# The store
# ------------------------------------------------------------------------------------------------


class EmbeddedStore(Store):
    """An in-process Redis 7 (fakeredis) shared by all sessions, driven from one event loop.

    `on_keyspace_event`, when set, receives every keyspace event as `(session, db, event, key)`
    (see the module documentation): synchronously, in Redis' order, after the command that
    caused it ran and before that command's reply is returned.
    """

    def __init__(self, *, config: dict[bytes, bytes] | None = None) -> None:
        self.on_keyspace_event: KeyspaceListener | None = None
        self.server = FakeServer(version=REDIS_VERSION, server_type="redis", config=config)
        # Every database is one of ours, so writes tell us which waited-on keys became ready.
        self.server.dbs.default_factory = lambda: _TrackedDatabase(self.server.lock, self)
        self._table: CommandTable | None = None
        # Keys written since the last serve that someone waits on, and CLIENT UNBLOCK targets.
        self._ready: dict[tuple[_TrackedDatabase, bytes], None] = {}
        self._unblock: dict[EmbeddedSession, None] = {}
        self._parked: dict[EmbeddedSession, _Waiter] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: weakref.WeakSet[EmbeddedSession] = weakref.WeakSet()
        self._serve_scheduled = False
        self._serving = False
        self.started = time.time()
        # Keyspace events: the events of the command being run (None between commands), and
        # the command itself (for the keys it finds expired).
        self._sink: list[KeyEvent] | None = None
        self._context: _CommandContext | None = None
        self._notify: tuple[bytes, frozenset[bytes]] = (b"", frozenset())  # parsed config
        self._patterns: dict[bytes, re.Pattern[bytes]] = {}
        # Active expiry: one timer, for the soonest expiry of any database.
        self._expiry_dirty = False  # an expiry was stored since the timer was armed
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_at = math.inf
        self._expiry_loop: asyncio.AbstractEventLoop | None = None
        # SLOWLOG, LATENCY (jshost.store.embedded_monitor), with their settings parsed.
        self.monitor = CommandMonitor()
        self._monitor_config = self._parse_monitor_config()
        self.touching = True  # False while a CLIENT NO-TOUCH client's command runs
        # CLIENT TRACKING (jshost.store.embedded_tracking): who tracks what, and the socket
        # whose command runs now (NOLOOP), and FLUSHDB/FLUSHALL in progress (one null push).
        self.tracking = TrackingTable()
        self._running: _Socket | None = None
        self._flushing = False
        self._by_id: weakref.WeakValueDictionary[int, EmbeddedSession] = (
            weakref.WeakValueDictionary()
        )
        self.started_rss = rss_bytes()
        self.expired_keys = 0  # INFO's, since the start or CONFIG RESETSTAT

    def open_session(self) -> EmbeddedSession:
        return EmbeddedSession(self)

    def command_info(self) -> CommandTable:
        if self._table is None:
            self._table = self._build_table()
        return self._table

    async def aclose(self) -> None:
        for session in list(self._sessions):
            session.close()
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None

    # -- the data file (jshost.persistence) ---------------------------------------------------------

    def export_values(self) -> Iterator[tuple[int, bytes, StoredValue | str, float | None]]:
        """Every live key of every database: (db, key, value, expiry time or None). A value of
        a type that has no `StoredValue` (a time series, say) is its type's name. The expiry
        is unix time in seconds, exactly as stored (PEXPIRETIME shows it in ms)."""
        now = time.time()
        for index, db in sorted(self.server.dbs.items()):
            for key, item in list(db._dict.items()):
                if item.expireat is not None and item.expireat <= now:
                    continue
                try:
                    value: StoredValue | str = to_stored(item.value)
                except UnsupportedValue as exc:
                    value = exc.kind
                yield index, key, value, item.expireat

    def import_value(self, db: int, key: bytes, value: StoredValue, expiry: float | None) -> None:
        """Store `value` at `key` (replacing it), before any client is served; `expiry` as
        `export_values` gives it. An expiry already past stores nothing."""
        if expiry is not None and expiry <= time.time():
            return
        stored = from_stored(value)
        if isinstance(stored, (Hash, ExpiringMembersSet)) and not len(stored):
            return  # every member's own time to live has passed meanwhile
        item = Item(stored)
        item.expireat = expiry
        self.server.dbs[db][key] = item
        self._expiry_dirty = True

    def serve_blocked(self) -> None:
        """Retry the commands of clients blocked on keys written since the last call, oldest
        first, as Redis does after each command (handleClientsBlockedOnKeys)."""
        if self._serving or not (self._ready or self._unblock):
            return  # nothing to do, or a retry's own writes: the loop below picks those up
        self._serving = True
        try:
            self._check_unblocked()
            while self._ready:
                ready, self._ready = self._ready, {}
                for db, key in ready:
                    self._serve_key(db, key)
        finally:
            self._serving = False

    # -- keyspace events ---------------------------------------------------------------------------

    def _notify_flags(self) -> frozenset[bytes]:
        """`notify-keyspace-events` (CONFIG SET may change it), parsed."""
        config = self.server.config
        raw = config.get(_NOTIFY_CONFIG)
        if raw is None:  # CONFIG SET keeps the name as the client spelt it
            raw = next((v for k, v in config.items() if k.lower() == _NOTIFY_CONFIG), b"")
        if raw != self._notify[0]:
            self._notify = (raw, notify_flags(raw))
        return self._notify[1]

    def _events_wanted(self) -> bool:
        """Whether anyone can see keyspace events (else the store does not compute them)."""
        return self.on_keyspace_event is not None or bool(self._notify_flags())

    def _db_index(self, db: _TrackedDatabase) -> int:
        if db.index is None:  # SWAPDB swaps contents, not objects: the number never changes
            db.index = next(i for i, d in self.server.dbs.items() if d is db)
        return db.index

    def _key_expired(self, db: _TrackedDatabase, key: bytes) -> None:
        """`db` dropped `key` because it expired: report `expired` at the right place."""
        self.expired_keys += 1
        if self.tracking.clients:
            self._tracked_key_changed(key, expired=True)
        if not self._events_wanted():
            return
        context = self._context
        if context is not None:
            if context.silent:
                return  # flushed, not expired: Redis notifies nothing
            if context.db is db:
                context.expired.append(key)  # the command's own events place it (its lookup)
                return
        self._emit([KeyEvent(self._db_index(db), b"expired", key)])

    def _emit(self, events: list[KeyEvent]) -> None:
        """Events of the command being run, delivered when it is over."""
        if not events:
            return
        if self._sink is not None:
            self._sink.extend(events)
        else:  # not inside a command: only expiry gets here
            self._deliver(None, events)

    def _deliver(self, session: EmbeddedSession | None, events: list[KeyEvent]) -> None:
        listener = self.on_keyspace_event
        flags = self._notify_flags()
        publish = bool(flags) and bool(self.server.subscribers or self.server.psubscribers)
        for event in events:
            if listener is not None:
                try:
                    listener(session, event.db, event.event, event.key)
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

    # -- active expiry -----------------------------------------------------------------------------

    def _arm_expiry(self) -> None:
        """(Re)arm the expiry timer for the soonest expiry stored in any database. Without a
        running event loop there is no timer: keys then expire lazily, on access."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._expiry_dirty = True  # armed by the first command run under a loop
            return
        self._expiry_dirty = False
        heaps = [db._expiry_heap for db in list(self.server.dbs.values())]
        earliest = min((heap[0][0] for heap in heaps if heap), default=None)
        timer = self._expiry_timer
        if timer is not None:
            if earliest is not None and self._expiry_loop is loop and self._expiry_at <= earliest:
                return  # it fires soon enough already
            timer.cancel()  # too late, or on a loop that is gone
            self._expiry_timer, self._expiry_loop, self._expiry_at = None, None, math.inf
        if earliest is None:
            return
        # Redis expires a key once its time has passed; the slack makes sure it has.
        delay = max(0.0, earliest - time.time()) + _EXPIRY_SLACK
        self._expiry_at = earliest
        self._expiry_loop = loop
        self._expiry_timer = loop.call_later(delay, self._expire_due)

    def _expire_due(self) -> None:
        """The timer: delete every key whose time has come, report `expired` (no session)."""
        self._expiry_timer = None
        self._expiry_at = math.inf
        now = time.time()
        outer, self._sink = self._sink, []
        try:
            for db in list(self.server.dbs.values()):
                db.time = now  # what `expired()` compares with (each command sets it too)
                db._remove_expired()  # `_TrackedDatabase` reports each key it drops
        finally:
            events, self._sink = self._sink, outer
        if events:
            self._deliver(None, events)
        self._expiry_dirty = True
        self._arm_expiry()

    # -- blocked clients ---------------------------------------------------------------------------

    def _key_ready(self, db: _TrackedDatabase, key: bytes) -> None:
        self._ready[(db, key)] = None

    def _unblock_requested(self, session: EmbeddedSession) -> None:
        if session in self._parked:
            self._unblock[session] = None

    def _serve_later(self) -> None:
        """After a `call` (inside an atomic section), serve blocked clients once it is over."""
        pending = self._ready or self._unblock
        if pending and not self._serve_scheduled and self._loop is not None:
            self._serve_scheduled = True
            self._loop.call_soon(self._scheduled_serve)

    def _scheduled_serve(self) -> None:
        self._serve_scheduled = False
        self.serve_blocked()

    def _serve_key(self, db: _TrackedDatabase, key: bytes) -> None:
        for waiter in list(db.waiters.get(key, ())):
            if waiter.future.done():
                continue
            reply, timeout = waiter.session._run(waiter.args)
            if timeout is None:  # served (or failed): the client gets this reply
                self._unpark(waiter)
                waiter.future.set_result(reply)

    def _park(self, waiter: _Waiter, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parked[waiter.session] = waiter
        for key in waiter.keys:
            waiter.db.waiters.setdefault(key, deque()).append(waiter)

    def _unpark(self, waiter: _Waiter) -> None:
        if self._parked.get(waiter.session) is waiter:
            del self._parked[waiter.session]
        for key in waiter.keys:
            queue = waiter.db.waiters.get(key)
            if queue is None:
                continue
            try:
                queue.remove(waiter)
            except ValueError:
                pass
            if not queue:
                del waiter.db.waiters[key]

    def _check_unblocked(self) -> None:
        """Answer the parked sessions that CLIENT UNBLOCK was aimed at."""
        targets, self._unblock = self._unblock, {}
        for session in targets:
            waiter = self._parked.get(session)
            reply = session._unblocked()
            if waiter is None or reply is None or waiter.future.done():
                continue
            self._unpark(waiter)
            waiter.future.set_result(reply)  # _TIMED_OUT for UNBLOCK ... TIMEOUT

    def _retry_args(self, session: EmbeddedSession, args: list[bytes]) -> list[bytes]:
        """The command to retry when keys change. XREAD's `$` means "after the last entry when
        the command blocked", so it is pinned to that id now."""
        if args[0].lower() != b"xread":
            return args
        try:
            at = next(i for i, a in enumerate(args) if i > 0 and a.lower() == b"streams")
        except StopIteration:
            return args
        count = (len(args) - at - 1) // 2
        pinned = list(args)
        for j in range(count):
            if pinned[at + 1 + count + j] == b"$":
                pinned[at + 1 + count + j] = self._last_id(session, args[at + 1 + j])
        return pinned

    @staticmethod
    def _last_id(session: EmbeddedSession, key: bytes) -> bytes:
        info, _ = session._run([b"XINFO", b"STREAM", key])
        if isinstance(info, dict):
            last = info.get(b"last-generated-id")
            if isinstance(last, bytes):
                return last
        return b"0-0"

    # -- command table and INFO --------------------------------------------------------------------

    @property
    def parked(self) -> dict[EmbeddedSession, _Waiter]:
        """The sessions waiting in a blocking command."""
        return self._parked

    def version_text(self) -> str:
        return ".".join(map(str, REDIS_VERSION))

    def config_value(self, name: bytes) -> bytes:
        """A setting's value (CONFIG SET keeps names lower-case), or its default."""
        return self.server.config.get(name, _CONFIG_DEFAULTS.get(name, b""))  # type: ignore[no-any-return]

    def _parse_monitor_config(self) -> tuple[int, int, int, bool]:
        value = self.config_value
        return (int(value(b"slowlog-log-slower-than")), int(value(b"slowlog-max-len")),
                int(value(b"latency-monitor-threshold")),
                value(b"latency-tracking").lower() == b"yes")

    def _config_changed(self) -> None:
        self._monitor_config = self._parse_monitor_config()

    def _record(self, args: list[bytes], micros: int, sock: _Socket) -> None:
        """A command has run in `micros` microseconds: the histograms, the slow log and the
        latency monitor (the common case, a fast command, costs a histogram count)."""
        slower_than, max_len, latency_ms, histograms = self._monitor_config
        if histograms:  # (inline: this runs for every command)
            histogram = self.monitor.histograms.get(args[0].lower())
            if histogram is None:
                histogram = self.monitor.histograms[args[0].lower()] = Histogram()
            histogram.calls += 1
            histogram.usec += micros
            histogram.buckets[(micros - 1).bit_length() if micros > 1 else 0] += 1
        if not (0 <= slower_than <= micros or 0 < latency_ms * 1000 <= micros):
            return
        fast = False
        if latency_ms > 0 and micros >= latency_ms * 1000:
            info = self.command_info().lookup(args)
            fast = info is not None and "fast" in info.flags
        name = sock._client_info.get("name", "") or ""
        self.monitor.record_slow(
            args, micros, slower_than=slower_than, max_len=max_len,
            latency_threshold_ms=latency_ms, fast=fast, client=(sock._session.peer, name.encode()),
        )

    def _tracked_key_changed(self, key: bytes, expired: bool = False) -> None:
        """Tell the clients tracking `key` (a FLUSHDB tells them all at its end instead)."""
        if self._flushing:
            return
        running = self._running
        writer = None if expired or running is None else int(running._client_info["id"])
        for client_id, keys in self.tracking.modified(key, writer).items():
            self._invalidate(client_id, keys)

    def _invalidate(self, client_id: int, keys: list[bytes] | None) -> None:
        session = self._by_id.get(client_id)
        if session is None or session.closed:
            self.tracking.disable(client_id)
            return
        push = Push([INVALIDATE, keys])
        if session.on_push is None:
            session.pushes.append(push)
        else:
            session.on_push(push)

    def _build_table(self) -> CommandTable:
        """Redis 7.2's table, topped up with what fakeredis adds (module commands and others)."""
        supported = {
            name.replace(" ", "|")
            for name, sig in SUPPORTED_COMMANDS.items()
            if "redis" in sig.server_types
        }
        known = get_all_commands_info()  # fakeredis' own COMMAND data (for the commands it adds)
        extra = CommandTable.from_command_reply(
            (info for name, info in known.items() if name.decode().replace(" ", "|") in supported),
            add_host_commands=False,
        )
        return CommandTable.bundled().merged(extra)

__all__ = ["REDIS_VERSION", "EmbeddedSession", "EmbeddedStore", "KeyspaceListener"]
