"""The embedded store's connection to fakeredis: its command path, with the replies captured.

Every use of fakeredis internals lives in this package (fakeredis is pinned to 2.41.0; the guard
tests `test_fakeredis_internals_shape` and `test_fakeredis_internals_used_for_events` fail loudly
when they change). What `StoreSocket` uses, and why:

* `FakeSocket._process_command(fields)`: fakeredis' own command path (ACL, arity, MULTI queueing,
  EXECABORT, watches, keyspace notifications) without the RESP encoding and the redis-py client.
  Its reply is captured:
  - `_decode_result(result)` is called once per command with the raw reply (`SimpleString`,
    `SimpleError`, bytes, int, float, list, dict, str, `NoResponse`): we type it
    (`reply_fixes.typed`);
  - `put_response(msg)` then queues it; anything else queued (pub/sub messages, subscribe
    confirmations) is a push;
  - `_blocking(timeout, func, shape)` is how every blocking command runs: we never wait in it,
    we run the non-blocking pass and note that the command would have blocked;
  - `_name_to_func(name)` finds a command: we add a few Redis commands fakeredis lacks
    (`extra_commands`), and replace some it has (below).
* Replaced because they are holes (docs/security.md): DUMP / RESTORE (fakeredis pickles the
  value, so RESTORE ran any code a client sent: Redis' RDB encoding instead, `jshost.store.rdb`
  and `jshost.store.embedded.values`); the Lua commands (fakeredis runs Lua through lupa, when
  it is installed, with the whole Lua library and a door into Python: refused); the ACL
  commands that change or save users and `CONFIG SET aclfile` (they wrote and read any file,
  and could lock every client out: refused). fakeredis' `acl_setuser`, `acl_deluser`,
  `acl_save`, `acl_load` and `config_set` are overridden by name.
* Keyspace events (`jshost.store.embedded.events`): `FakeSocket._run_command(func, sig, args,
  from_script)` runs each command proper (also each command of EXEC and each `redis.call` of a
  script) and calls `_keyspace_notifications(command_items, event)` after writing back;
  `CommandItem.key` and `.is_modified`; `Database._dict` (the raw items), `Item.value` /
  `.expireat`, `Database._expiry_heap` (soonest expiry first), `Database.expired(item)`;
  `XStream._groups` / `StreamGroup.consumers`; `FakeServer.config`, `.subscribers`,
  `.psubscribers`.
* The databases (`jshost.store.embedded.database`): `Database.notify_watch(key)`, the two places
  fakeredis drops expired keys, and `FakeServer.dbs` (a defaultdict of `Database`) with our
  factory.

Sessions are pinned to RESP3; `reply_fixes` restores the types fakeredis flattens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import redis
from fakeredis._command_args_parsing import Int
from fakeredis._commands import Signature
from fakeredis._core._database import CommandItem
from fakeredis._helpers import NoResponse, SimpleError, SimpleString

from jshost.errors import (
    CONFIG_IMMUTABLE,
    DumpErrors,
    EmbeddedErrors,
    SecurityErrors,
    StoreErrors,
    config_set_failed,
)
from jshost.replies import NO_REPLY, ErrorReply, Push, Status, StoreReply
from jshost.settings import parse_size
from jshost.store import rdb
from jshost.store.embedded.events import (
    FLUSHES,
    PAST_EXPIRY_DELETES,
    RUNS_OTHERS,
    CommandContext,
    key_state,
    sig_words,
    wire_args,
)
from jshost.store.embedded.extra_commands import EXTRA_SIGNATURES, ExtraCommands
from jshost.store.embedded.signature import signature
from jshost.store.embedded.geo import GeoCommands
from jshost.store.embedded.reply_fixes import typed
from jshost.store.embedded.server_commands import CONFIG_ALIASES, INTEGER_CONFIG, ServerCommands
from jshost.store.embedded.tracking import TrackingCommands
from jshost.store.embedded.values import UnsupportedValue, from_stored, to_stored
from jshost.store.keyspace_events import CommandFacts, redis_events

if TYPE_CHECKING:
    from jshost.store.embedded.database import TrackedDatabase
    from jshost.store.embedded.session import EmbeddedSession
    from jshost.store.embedded.store import EmbeddedStore

LOG = logging.getLogger(__name__)

_PENDING: Any = object()  # `StoreSocket._reply` before the command has produced one

#: fakeredis error texts that differ from Redis' in a way that matters to keyspace events (the
#: error says whether the command had looked its keys up): command → (fakeredis prefix, Redis).
_EVENT_ERROR_FIXES: dict[str, tuple[str, str]] = {
    "xreadgroup": (StoreErrors.XREADGROUP_NO_KEY_FAKEREDIS, StoreErrors.NOGROUP),
}

#: CONFIG SET names the embedded store refuses, as Redis 7 does by default (files it would write
#: or read; fakeredis' ACL SAVE / LOAD used `aclfile`): name -> Redis' reason.
CONFIG_REFUSED: dict[bytes, str] = {
    **dict.fromkeys((b"aclfile", b"logfile", b"appendfilename", b"appenddirname", b"pidfile",
                     b"unixsocket"), CONFIG_IMMUTABLE),
    **dict.fromkeys((b"dir", b"dbfilename"), SecurityErrors.CONFIG_PROTECTED),
}

#: Lua scripting: refused (see the module docstring), whether or not lupa is installed.
LUA_COMMANDS = frozenset(("eval", "evalsha", "eval_ro", "evalsha_ro", "script", "function",
                          "fcall", "fcall_ro"))
_LUA_SIGNATURES: dict[str, Signature] = {}


def _lua_signature(name: str) -> Signature:
    sig = _LUA_SIGNATURES.get(name)
    if sig is None:
        sig = _LUA_SIGNATURES[name] = signature(name, "x_no_lua", (), (bytes,))
    return sig


def _is_int(value: bytes) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


class StoreSocket(GeoCommands, ServerCommands, TrackingCommands, ExtraCommands):
    """A fakeredis connection whose replies are captured typed instead of queued for a client."""

    def __init__(self, store: EmbeddedStore, session: EmbeddedSession) -> None:
        super().__init__(store.server, 0, client_class=redis.Redis, client_info={"resp": 3})
        self._session = session
        self._reply: Any = _PENDING
        self._delivered = False
        self._would_block: float | None = None  # set by `_blocking` when a command would wait
        self._x_items: list[CommandItem] = []  # the items of the last `_run_command`

    # -- the command path ------------------------------------------------------------------------

    def run(self, args: list[bytes]) -> tuple[StoreReply, float | None]:
        """Run one command: its typed reply, and its timeout (0 = none) if it would have blocked."""
        self._reply = _PENDING
        self._delivered = False
        self._would_block = None
        store = self._session.store
        events = store.events
        outer, events.sink = events.sink, []  # this command's keyspace events (runs may nest)
        # CLIENT NO-TOUCH: this client's commands leave the keys' access times alone (but TOUCH).
        store.touching = not self._no_touch or args[0].lower() == b"touch"
        outer_running, store.running = store.running, self
        started = time.perf_counter_ns()
        try:
            self._process_command(args)
        except Exception as exc:  # a fakeredis bug must not take the client down
            LOG.exception("embedded store failed on %r", args[:1])
            reply: StoreReply = ErrorReply(StoreErrors.INTERNAL.format(exc=exc))
            would_block = None
        else:
            # Not delivered: SUBSCRIBE and co. (NoResponse), or muted by CLIENT REPLY OFF|SKIP.
            reply = self._reply if self._delivered else NO_REPLY
            would_block = self._would_block
        finally:
            emitted, events.sink = events.sink, outer
            self._reply = _PENDING
            store.touching = True
            store.running = outer_running
            if store.tracking.clients:
                self._after_tracked_command(args)
        queued = type(reply) is Status and reply == b"QUEUED"
        if would_block is None and not queued:  # queued and parked commands have not run yet
            store.record(args, (time.perf_counter_ns() - started) // 1000, self)
        # Before the reply goes back: a listener (sync trigger) is atomic with the command.
        if emitted:
            events.deliver(self._session, emitted)
        expiry = store.expiry  # (re)armed when an expiry was stored, or its loop has gone
        if expiry.dirty or expiry.loop is not None and expiry.loop.is_closed():
            expiry.arm()
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
        flush = sig.name in FLUSHES
        if flush:
            store.flushing = True
        try:
            result = self._run_command_proper(func, sig, args, from_script)
        finally:
            if flush:
                store.flushing = False
        if flush and not isinstance(result, SimpleError):
            for client_id in store.tracking.flushed():
                store.invalidate(client_id, None)
        tracking = store.tracking.clients.get(int(self._client_info["id"]))
        if tracking is not None and tracking.remembers_reads() and not from_script:
            argv = [*sig_words(sig.name), *wire_args(args)]
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
        events = store.events
        if sig.name in RUNS_OTHERS or not events.wanted():
            result = super()._run_command(func, sig, args, from_script)
            if sig.name in PAST_EXPIRY_DELETES:
                self._drop_if_expired(args)
            return result
        argv = [*sig_words(sig.name), *wire_args(args)]
        db, index = self._db, self._db_num
        keys = list(dict.fromkeys(store.command_info().keys_of(argv)))
        context = CommandContext(db, silent=sig.name in FLUSHES)
        outer, events.context = events.context, context
        try:
            # `db.get` drops the keys that have expired (lazy expiry), as Redis' lookups would;
            # it is not an access of its own (OBJECT IDLETIME).
            touching, store.touching = store.touching, False
            before = {key: key_state(db.get(key)) for key in keys}
            store.touching = touching
            self._x_items = []
            result = super()._run_command(func, sig, args, from_script)
            items, self._x_items = self._x_items, []
            if sig.name in PAST_EXPIRY_DELETES:
                self._drop_if_expired(args)
        finally:
            events.context = outer
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
            after={key: key_state(raw.get(key)) for key in keys},
            modified=[item.key for item in items if item.is_modified],
            expired=context.expired,
            fallback=sig.name.encode(),
        )
        events.emit(redis_events(facts))
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
        self._reply = typed(result)
        return self._reply

    def put_response(self, msg: Any) -> None:
        if msg is self._reply:
            self._delivered = True  # the reply of the command being run: `run` returns it
            return
        push = Push(typed(msg))
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
            self._session.store.blocked.unblock_requested(self._session)

    def _name_to_func(self, cmd_name: str) -> tuple[Callable[..., Any] | None, Signature]:
        sig = EXTRA_SIGNATURES.get(cmd_name)
        if sig is not None:
            return getattr(self, sig.func_name), sig
        if cmd_name.partition(" ")[0] in LUA_COMMANDS:
            return self.x_no_lua, _lua_signature(cmd_name)
        return super()._name_to_func(cmd_name)

    # -- state -----------------------------------------------------------------------------------

    @property
    def db_index(self) -> int:
        return self._db_num

    @property
    def db_object(self) -> TrackedDatabase:
        return cast("TrackedDatabase", self._db)

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

    # -- fakeredis commands that were holes (docs/security.md) -----------------------------------

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
                raise SimpleError(StoreErrors.SYNTAX_ERROR)
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
        # All or nothing. Names are case-insensitive and kept lower-case (the old ziplist names
        # are aliases); `maxmemory` is checked and kept in bytes, as Redis shows it.
        names = [CONFIG_ALIASES.get(n.lower(), n.lower()) for n in args[0::2]]
        values = list(args[1::2])
        for index, (name, given, value) in enumerate(zip(names, args[0::2], values)):
            reason = CONFIG_REFUSED.get(name)
            if (reason is None and name in INTEGER_CONFIG and name != b"maxmemory"
                    and not _is_int(value)):
                reason = EmbeddedErrors.CONFIG_NOT_INTEGER
            if reason is not None:
                raise SimpleError(config_set_failed(given.decode("utf-8", "replace"), reason))
            if name == b"maxmemory":
                try:
                    values[index] = str(parse_size(value.decode("ascii", "replace"))).encode()
                except ValueError as exc:
                    raise SimpleError(config_set_failed("maxmemory", str(exc))) from None
        pairs = [part for pair in zip(names, values) for part in pair]
        for name in pairs[0::2]:
            self._server.config.pop(name.upper(), None)
        reply = super().config_set(*pairs, *args[len(pairs):])
        self._session.store.config_changed()
        return reply
