"""Server commands the embedded store adds to fakeredis' (docs/embedded-store.md lists them):
`OBJECT`, `MEMORY`, `SLOWLOG`, `LATENCY`, `LOLWUT`, `MODULE`, `REPLICAOF`/`SLAVEOF`, `DEBUG
SLEEP`/`OBJECT`, `BITFIELD_RO`, `COMMAND GETKEYSANDFLAGS`, `ACL GENPASS`/`HELP`, and a right
`PFMERGE`.

`ServerCommands` is a mixin of the store's fakeredis socket (`jshost.store.embedded.socket.StoreSocket`);
`SIGNATURES` are their fakeredis signatures (arity as fakeredis checks it; Redis' own arity
errors come from the command table before). Values Redis derives from its memory layout
(`OBJECT ENCODING`, `MEMORY USAGE`) are computed from the value's current size the way Redis 7.2
would have chosen the encoding for a value built at that size: an approximation, documented.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import secrets
import sys
import time
from typing import TYPE_CHECKING, Any

from fakeredis._command_args_parsing import Int
from fakeredis._commands import Key, Signature
from fakeredis._core._database import CommandItem
from fakeredis._helpers import OK, SimpleError, SimpleString
from fakeredis.commands_mixins.bitmap_mixin import BitmapCommandsMixin
from fakeredis.commands_mixins.set_mixin import SetCommandsMixin
from fakeredis.commands_mixins.streams_mixin import StreamsCommandsMixin
from fakeredis.model import ExpiringMembersSet, XStream

from jshost.errors import EmbeddedErrors
from jshost.replies import SetReply
from jshost.store import rdb
from jshost.store import values as v
from jshost.store.embedded.values import UnsupportedValue, to_stored
from jshost.store.embedded.signature import signature

if TYPE_CHECKING:
    from jshost.store.embedded.store import EmbeddedStore

LOG = logging.getLogger(__name__)

#: CONFIG GET defaults (Redis 7.2's) the embedded store answers; the encoding limits are the
#: ones OBJECT ENCODING follows, slowlog-* and latency-* drive SLOWLOG and LATENCY.
CONFIG_DEFAULTS: dict[bytes, bytes] = {
    b"appendonly": b"no",
    b"databases": b"16",
    b"maxmemory": b"0",
    b"maxmemory-policy": b"noeviction",
    b"notify-keyspace-events": b"",
    b"save": b"",
    b"hash-max-listpack-entries": b"512",
    b"hash-max-listpack-value": b"64",
    b"hash-max-ziplist-entries": b"512",
    b"hash-max-ziplist-value": b"64",
    b"set-max-intset-entries": b"512",
    b"set-max-listpack-entries": b"128",
    b"set-max-listpack-value": b"64",
    b"zset-max-listpack-entries": b"128",
    b"zset-max-listpack-value": b"64",
    b"zset-max-ziplist-entries": b"128",
    b"zset-max-ziplist-value": b"64",
    b"list-max-listpack-size": b"-2",
    b"list-max-ziplist-size": b"-2",
    b"stream-node-max-bytes": b"4096",
    b"stream-node-max-entries": b"100",
    b"slowlog-log-slower-than": b"10000",
    b"slowlog-max-len": b"128",
    b"latency-monitor-threshold": b"0",
    b"latency-tracking": b"yes",
}
#: Settings whose value must be an integer (CONFIG SET checks it, as Redis does).
INTEGER_CONFIG = frozenset(
    name for name, value in CONFIG_DEFAULTS.items() if value.lstrip(b"-").isdigit()
)
#: Aliases Redis 7 keeps for the old ziplist names.
CONFIG_ALIASES = {
    b"hash-max-ziplist-entries": b"hash-max-listpack-entries",
    b"hash-max-ziplist-value": b"hash-max-listpack-value",
    b"zset-max-ziplist-entries": b"zset-max-listpack-entries",
    b"zset-max-ziplist-value": b"zset-max-listpack-value",
    b"list-max-ziplist-size": b"list-max-listpack-size",
}

_SHARED_INTEGERS = 10000  # Redis' OBJ_SHARED_INTEGERS: 0..9999 are shared objects
_SHARED_REFCOUNT = 2147483647  # Redis' OBJ_SHARED_REFCOUNT
_EMBSTR_LIMIT = 44  # Redis' OBJ_ENCODING_EMBSTR_SIZE_LIMIT
_LISTPACK_NODE_BYTES = {-1: 4096, -2: 8192, -3: 16384, -4: 32768, -5: 65536}
#: Key-spec flags in Redis' order (COMMAND GETKEYSANDFLAGS lists them so).
_KEY_FLAG_ORDER = ("RW", "RO", "OW", "RM", "access", "update", "insert", "delete", "not_key",
                   "incomplete", "variable_flags")
_MALLOC_STATS = b"Stats not supported for the current allocator"
_STARTED_RSS = 0


def _is_integer(data: bytes) -> bool:
    """Whether Redis would hold `data` as an integer (string2ll: canonical, fits 64 bits)."""
    if not data or len(data) > 20:
        return False
    try:
        number = int(data)
    except ValueError:
        return False
    return str(number).encode() == data and -(2**63) <= number < 2**63


def rss_bytes() -> int:
    """The process' resident memory (the embedded store lives in jshost's process)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_rss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class ServerCommands:
    """Mixin of `StoreSocket`: the commands above. Uses the socket's `_db`, `_server`, `_session`."""

    _db: Any
    _db_num: int
    _server: Any
    _session: Any

    # -- config --------------------------------------------------------------------------------

    def _store(self) -> EmbeddedStore:
        return self._session.store  # type: ignore[no-any-return]

    def _config_int(self, name: bytes) -> int:
        return int(self._store().config_value(name))

    def x_config_resetstat(self) -> SimpleString:
        """CONFIG RESETSTAT: the store's counters and per-command statistics."""
        store = self._store()
        store.monitor.histograms.clear()
        store.expired_keys = 0
        return OK

    # -- OBJECT ----------------------------------------------------------------------------------

    def x_object(self, sub: bytes, *args: bytes) -> Any:
        word = sub.lower()
        if word == b"help":
            return _help(b"OBJECT", _OBJECT_HELP)
        if word not in (b"encoding", b"refcount", b"idletime", b"freq") or len(args) != 1:
            raise SimpleError(_unknown_sub(b"OBJECT", sub))
        key = args[0]
        item = self._db._dict.get(key)  # looked at without touching it (Redis: LOOKUP_NOTOUCH)
        if item is None or self._db.expired(item):
            return None
        if word == b"encoding":
            return self._encoding(item.value)
        if word == b"refcount":
            value = item.value
            shared = isinstance(value, bytes) and _is_integer(value)
            return _SHARED_REFCOUNT if shared and 0 <= int(value) < _SHARED_INTEGERS else 1
        policy = self._store().config_value(b"maxmemory-policy").lower()
        if word == b"freq":
            raise SimpleError(EmbeddedErrors.OBJECT_FREQ if b"lfu" not in policy
                              else EmbeddedErrors.NO_LFU)
        if b"lfu" in policy:
            raise SimpleError(EmbeddedErrors.OBJECT_IDLETIME_LFU)
        return int(max(0.0, self._db.time - self._db.touched.get(key, self._db.time)))

    def _encoding(self, value: Any) -> bytes:
        try:
            stored = to_stored(value)
        except UnsupportedValue:
            return b"raw"  # module values (Redis: OBJ_ENCODING_RAW)
        config = self._config_int
        if isinstance(stored, v.StringValue):
            data = stored.data
            if _is_integer(data):
                return b"int"
            return b"embstr" if len(data) <= _EMBSTR_LIMIT else b"raw"
        if isinstance(stored, v.ListValue):
            size = config(b"list-max-listpack-size")
            if size > 0:
                fits = len(stored.items) <= size
            else:
                limit = _LISTPACK_NODE_BYTES.get(size, 8192)
                fits = sum(len(item) + 2 for item in stored.items) + 7 <= limit
            return b"listpack" if fits else b"quicklist"
        if isinstance(stored, v.SetValue):
            members = stored.members
            if len(members) <= config(b"set-max-intset-entries") and all(map(_is_integer, members)):
                return b"intset"
            small = len(members) <= config(b"set-max-listpack-entries")
            short = all(len(m) <= config(b"set-max-listpack-value") for m in members)
            return b"listpack" if small and short else b"hashtable"
        if isinstance(stored, v.HashValue):
            small = len(stored.fields) <= config(b"hash-max-listpack-entries")
            limit = config(b"hash-max-listpack-value")
            short = all(len(f) <= limit and len(x) <= limit for f, x in stored.fields)
            return b"listpack" if small and short else b"hashtable"
        if isinstance(stored, v.ZSetValue):
            small = len(stored.members) <= config(b"zset-max-listpack-entries")
            short = all(len(m) <= config(b"zset-max-listpack-value") for m, _ in stored.members)
            return b"listpack" if small and short else b"skiplist"
        if isinstance(stored, v.StreamValue):
            return b"stream"
        return b"raw"

    # -- MEMORY ----------------------------------------------------------------------------------

    def x_memory(self, sub: bytes, *args: bytes) -> Any:
        word = sub.lower()
        if word == b"help":
            return _help(b"MEMORY", _MEMORY_HELP)
        if word == b"usage":
            return self._memory_usage(args)
        if args:
            raise SimpleError(_unknown_sub(b"MEMORY", sub))
        if word == b"stats":
            return self._memory_stats()
        if word == b"malloc-stats":
            return _MALLOC_STATS
        if word == b"doctor":
            return (b"jshost's embedded store runs inside jshost's Python process, without "
                    b"Redis' allocator: MEMORY STATS and INFO memory show what it uses.\n")
        if word == b"purge":
            return OK
        raise SimpleError(_unknown_sub(b"MEMORY", sub))

    def _memory_usage(self, args: tuple[bytes, ...]) -> int | None:
        if not args:
            raise SimpleError(_unknown_sub(b"MEMORY", b"usage"))
        if len(args) == 3 and args[1].lower() == b"samples":
            Int.decode(args[2])  # accepted: every element is counted
        elif len(args) != 1:
            raise SimpleError(EmbeddedErrors.SYNTAX)
        item = self._db._dict.get(args[0])
        if item is None or self._db.expired(item):
            return None
        return estimated_size(args[0], item.value, self._encoding(item.value))

    def _memory_stats(self) -> dict[bytes, Any]:
        rss, peak = rss_bytes(), _peak_rss_bytes()
        dbs = {i: db for i, db in sorted(self._server.dbs.items()) if len(db._dict)}
        keys = sum(len(db._dict) for db in dbs.values())
        reply: dict[bytes, Any] = {
            b"peak.allocated": peak,
            b"total.allocated": rss,
            b"startup.allocated": self._store().started_rss,
            b"keys.count": keys,
        }
        for index, db in dbs.items():
            reply[b"db.%d" % index] = {
                b"overhead.hashtable.main": sys.getsizeof(db._dict),
                b"overhead.hashtable.expires": 0,
            }
        return reply

    # -- SLOWLOG and LATENCY (`monitor`) --------------------------------------------------

    def x_slowlog(self, sub: bytes, *args: bytes) -> Any:
        monitor = self._store().monitor
        word = sub.lower()
        if word == b"help":
            return _help(b"SLOWLOG", _SLOWLOG_HELP)
        if word == b"get" and len(args) <= 1:
            count = 10 if not args else Int.decode(args[0], EmbeddedErrors.SLOWLOG_COUNT)
            if count < -1:
                raise SimpleError(EmbeddedErrors.SLOWLOG_COUNT)
            return monitor.slowlog_get(count)
        if word == b"len" and not args:
            return len(monitor.slowlog)
        if word == b"reset" and not args:
            monitor.slowlog_reset()
            return OK
        raise SimpleError(_unknown_sub(b"SLOWLOG", sub))

    def x_latency(self, sub: bytes, *args: bytes) -> Any:
        monitor = self._store().monitor
        word = sub.lower()
        if word == b"help":
            return _help(b"LATENCY", _LATENCY_HELP)
        if word == b"latest" and not args:
            return monitor.latency_latest()
        if word == b"history" and len(args) == 1:
            return monitor.latency_history(args[0])
        if word == b"reset":
            return monitor.latency_reset(args)
        if word == b"doctor" and not args:
            return monitor.latency_doctor(self._config_int(b"latency-monitor-threshold"))
        if word == b"histogram":
            return monitor.latency_histogram(args)
        if word == b"graph" and len(args) == 1:
            raise SimpleError(EmbeddedErrors.LATENCY_GRAPH)
        raise SimpleError(_unknown_sub(b"LATENCY", sub))

    # -- the rest --------------------------------------------------------------------------------

    def x_lolwut(self, *args: bytes) -> bytes:
        # What Redis answers for every LOLWUT VERSION but 5 and 6 (lolwutUnstableCommand).
        return b"Redis ver. %s\n" % self._store().version_text().encode()

    def x_module(self, sub: bytes, *args: bytes) -> Any:
        word = sub.lower()
        if word == b"help":
            return _help(b"MODULE", _MODULE_HELP)
        if word == b"list" and not args:
            return []
        if word in (b"load", b"loadex") and args:
            LOG.warning("MODULE %s %r refused: jshost's embedded store cannot load Redis "
                        "modules", word.decode().upper(), args[0])
            raise SimpleError(EmbeddedErrors.MODULE_LOAD)
        if word == b"unload" and len(args) == 1:
            raise SimpleError(EmbeddedErrors.MODULE_UNLOAD)
        raise SimpleError(_unknown_sub(b"MODULE", sub))

    def x_debug(self, sub: bytes, *args: bytes) -> Any:
        word = sub.lower()
        if word == b"sleep" and len(args) == 1:
            try:
                seconds = float(args[0])
            except ValueError:
                raise SimpleError(EmbeddedErrors.NOT_FLOAT) from None
            if seconds <= 0:
                return OK
            # Waits like a blocking command with nothing to wait for: only this client waits,
            # not the whole server as in Redis (any client may send it).
            block = self._blocking  # type: ignore[attr-defined]
            return block(seconds, lambda _first: None, lambda _none: OK)
        if word == b"object" and len(args) == 1:
            return self._debug_object(args[0])
        text = sub.decode("utf-8", "replace")[:128]
        raise SimpleError(EmbeddedErrors.DEBUG_UNSUPPORTED.format(sub=text))

    def _debug_object(self, key: bytes) -> SimpleString:
        item = self._db._dict.get(key)
        if item is None or self._db.expired(item):
            raise SimpleError(EmbeddedErrors.NO_SUCH_KEY)
        encoding = self._encoding(item.value)
        idle = int(max(0.0, self._db.time - self._db.touched.get(key, self._db.time)))
        try:  # the value's RDB encoding: DUMP's payload without type, version and checksum
            size = len(rdb.dump(to_stored(item.value))) - 11
        except (UnsupportedValue, rdb.RdbError):
            size = 0
        return SimpleString(
            b"Value at:0x0 refcount:1 encoding:%s serializedlength:%d lru:0 lru_seconds_idle:%d"
            % (encoding, size, idle)
        )

    def x_xinfo_stream(self, key: CommandItem, *args: bytes) -> dict[bytes, Any]:
        """XINFO STREAM key [FULL [COUNT n]] with Redis 7.2's fields, in its order (fakeredis
        adds Redis 8's, and its FULL lists each group's consumers as a count)."""
        full, count = False, 10
        if args:
            full = args[0].lower() == b"full"
            if not full or len(args) not in (1, 3) or len(args) == 3 and args[1].lower() != b"count":
                raise SimpleError(EmbeddedErrors.SYNTAX)
            if len(args) == 3:
                count = Int.decode(args[2])
        if key.key not in self._db._dict:  # (an expired key is gone from it by now)
            raise SimpleError(EmbeddedErrors.NO_SUCH_KEY)
        theirs = _pairs(StreamsCommandsMixin.xinfo_stream(self, key))
        lags = {g[b"name"]: g for g in StreamsCommandsMixin.xinfo_groups(self, key)}
        stream = to_stored(key.value)
        assert isinstance(stream, v.StreamValue)
        entries = stream.entries
        reply: dict[bytes, Any] = {
            b"length": len(entries),
            b"radix-tree-keys": theirs.get(b"radix-tree-keys", 0),
            b"radix-tree-nodes": theirs.get(b"radix-tree-nodes", 1),
            b"last-generated-id": _id(stream.last_id),
            b"max-deleted-entry-id": _id(stream.max_deleted_id),
            b"entries-added": stream.entries_added,
            b"recorded-first-entry-id": _id(entries[0][0] if entries else (0, 0)),
        }
        if not full:
            reply[b"groups"] = len(stream.groups)
            reply[b"first-entry"] = _entry(entries[0]) if entries else None
            reply[b"last-entry"] = _entry(entries[-1]) if entries else None
            return reply
        limit = count if count > 0 else None
        reply[b"entries"] = [_entry(e) for e in entries[:limit]]
        reply[b"groups"] = [_group_full(g, lags.get(g.name, {}), limit) for g in stream.groups]
        return reply

    def x_bitfield_ro(self, key: CommandItem, *args: bytes) -> Any:
        i = 0
        while i < len(args):
            if args[i].lower() != b"get" or i + 2 >= len(args):
                raise SimpleError(EmbeddedErrors.BITFIELD_RO)
            i += 3
        return BitmapCommandsMixin.bitfield(self, key, *args)

    def x_pfmerge(self, dest: CommandItem, *sources: CommandItem) -> SimpleString:
        # fakeredis' PFMERGE drops what the destination held; Redis merges it in.
        SetCommandsMixin.sunionstore(self, dest, dest, *sources)
        return OK

    def x_command_getkeysandflags(self, *args: bytes) -> list[Any]:
        table = self._store().command_info()
        info = table.lookup(args)
        if info is None:
            raise SimpleError(EmbeddedErrors.INVALID_COMMAND)
        if not info.arity_ok(len(args)):
            raise SimpleError(EmbeddedErrors.INVALID_ARITY)
        found: dict[bytes, list[bytes]] = {}
        for spec in info.key_specs:
            flags = [f.encode() for f in _KEY_FLAG_ORDER if f in spec.flags]
            for position in spec.positions(args):
                found.setdefault(args[position], flags)
        if not found:
            raise SimpleError(EmbeddedErrors.NO_KEY_ARGUMENTS)
        return [[key, SetReply(flags)] for key, flags in found.items()]

    def acl_genpass(self, *args: bytes) -> bytes:
        bits = 256
        if args:
            bits = Int.decode(args[0], EmbeddedErrors.ACL_GENPASS)
            if not 0 < bits <= 4096:
                raise SimpleError(EmbeddedErrors.ACL_GENPASS)
        chars = (bits + 3) // 4  # Redis rounds up to whole hex digits
        return secrets.token_hex((chars + 1) // 2)[:chars].encode()

    def x_acl_help(self) -> list[bytes]:
        return _help(b"ACL", _ACL_HELP)


def estimated_size(key: bytes, value: Any, encoding: bytes) -> int:
    """Bytes Redis 7.2 would use for `key` and `value` on 64 bits, roughly (dict entry, object
    header, strings with their headers, and per-element overhead by encoding)."""
    base = 24 + 16 + len(key) + 9  # dict entry, robj, key sds
    try:
        stored = to_stored(value)
    except UnsupportedValue:
        return base + sys.getsizeof(value)
    per = 2 if encoding in (b"listpack", b"intset") else 48
    if isinstance(stored, v.StringValue):
        return base + (8 if encoding == b"int" else len(stored.data) + 9)
    if isinstance(stored, v.ListValue):
        return base + sum(len(x) + per for x in stored.items)
    if isinstance(stored, v.SetValue):
        return base + sum(len(x) + per for x in stored.members)
    if isinstance(stored, v.HashValue):
        return base + sum(len(f) + len(x) + 2 * per for f, x in stored.fields)
    if isinstance(stored, v.ZSetValue):
        return base + sum(len(m) + 8 + per for m, _ in stored.members)
    if isinstance(stored, v.StreamValue):
        parts = sum(len(part) + 2 for _, fields in stored.entries for part in fields)
        return base + parts + 16 * len(stored.entries) + 64 * len(stored.groups)
    return base + sys.getsizeof(value)


def _id(stream_id: tuple[int, int]) -> bytes:
    return b"%d-%d" % stream_id


def _entry(entry: tuple[tuple[int, int], list[bytes]]) -> list[Any]:
    return [_id(entry[0]), list(entry[1])]


def _pairs(reply: Any) -> dict[bytes, Any]:
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2]))


def _group_full(group: v.StreamGroup, theirs: dict[bytes, Any], limit: int | None) -> dict[bytes, Any]:
    """One group of XINFO STREAM FULL: its pending entries and consumers, `limit` of each."""
    pending = group.pending
    return {
        b"name": group.name,
        b"last-delivered-id": _id(group.last_id),
        b"entries-read": theirs.get(b"entries-read", group.entries_read),
        b"lag": theirs.get(b"lag"),
        b"pel-count": len(pending),
        b"pending": [[_id(p.id), p.consumer, p.delivery_time, p.delivery_count]
                     for p in pending[:limit]],
        b"consumers": [
            {
                b"name": c.name,
                b"seen-time": c.seen_time,
                b"active-time": c.active_time,
                b"pel-count": sum(1 for p in pending if p.consumer == c.name),
                b"pending": [[_id(p.id), p.delivery_time, p.delivery_count]
                             for p in pending if p.consumer == c.name][:limit],
            }
            for c in group.consumers
        ],
    }


def _unknown_sub(container: bytes, sub: bytes) -> str:
    return EmbeddedErrors.SUBCOMMAND_SYNTAX.format(
        sub=sub.decode("utf-8", "replace")[:128], container=container.decode()
    )


def _help(container: bytes, entries: tuple[tuple[str, str], ...]) -> list[bytes]:
    head = f"{container.decode()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    lines = [head]
    for usage, text in (*entries, ("HELP", "Print this help.")):
        lines += [usage, f"    {text}"]
    return [line.encode() for line in lines]


_OBJECT_HELP = (
    ("ENCODING <key>", ("Return the kind of internal representation used in order to store the "
                       "value associated with a <key>.")),
    ("FREQ <key>", "Return the access frequency index of the <key>."),
    ("IDLETIME <key>", ("Return the idle time of the <key>, that is the approximated number of "
                       "seconds elapsed since the last access to the key.")),
    ("REFCOUNT <key>", ("Return the number of references of the value associated with the "
                       "specified <key>.")),
)
_MEMORY_HELP = (
    ("DOCTOR", "Return memory problems reports."),
    ("MALLOC-STATS", "Return internal statistics report from the memory allocator."),
    ("PURGE", "Attempt to purge dirty pages for reclamation by the allocator."),
    ("STATS", "Return information about the memory usage of the server."),
    ("USAGE <key> [SAMPLES <count>]", "Return memory in bytes used by <key> and its value."),
)
_SLOWLOG_HELP = (
    ("GET [<count>]", "Return top <count> entries from the slowlog (default: 10, -1 mean all)."),
    ("LEN", "Return the length of the slowlog."),
    ("RESET", "Reset the slowlog."),
)
_LATENCY_HELP = (
    ("DOCTOR", "Return a human readable latency analysis report."),
    ("HISTOGRAM [COMMAND ...]", ("Return a cumulative distribution of latencies in the format of "
                                "a histogram for the specified command names.")),
    ("HISTORY <event>", "Return time-latency samples for the <event> class."),
    ("LATEST", "Return the latest latency samples for all events."),
    ("RESET [<event> ...]", "Reset latency data of one or more <event> classes."),
)
_MODULE_HELP = (
    ("LIST", "Return a list of loaded modules."),
    ("LOAD <path> [<arg> ...]", ("Load a module library from <path> (not on jshost's embedded "
                                "store).")),
    ("LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
     "Load a module library from <path> (not on jshost's embedded store)."),
    ("UNLOAD <name>", "Unload a module."),
)
_ACL_HELP = (
    ("CAT [<category>]", ("List all commands that belong to <category>, or all command "
                         "categories when no category is specified.")),
    ("DELUSER <username> [<username> ...]", ("Delete a list of users (not on jshost's embedded "
                                            "store).")),
    ("DRYRUN <username> <command> [<arg> ...]", ("Returns whether the user can execute the given "
                                                "command without executing the command.")),
    ("GETUSER <username>", "Get the user's details."),
    ("GENPASS [<bits>]", ("Generate a secure 256-bit user password. The optional `bits` argument "
                         "can be used to specify a different size.")),
    ("LIST", "Show users details in config file format."),
    ("LOAD", "Reload users from the ACL file (not on jshost's embedded store)."),
    ("LOG [<count> | RESET]", "Show the ACL log entries."),
    ("SAVE", "Save the current config to the ACL file (not on jshost's embedded store)."),
    ("SETUSER <username> <attribute> [<attribute> ...]", ("Create or modify a user (not on "
                                                         "jshost's embedded store).")),
    ("USERS", "List all the registered usernames."),
    ("WHOAMI", "Return the current connection username."),
)

#: fakeredis signatures of the commands above (`StoreSocket._name_to_func` looks here first).
SIGNATURES: dict[str, Signature] = {
    "object": signature("object", "x_object", (bytes,), (bytes,)),
    "memory": signature("memory", "x_memory", (bytes,), (bytes,)),
    "slowlog": signature("slowlog", "x_slowlog", (bytes,), (bytes,)),
    "latency": signature("latency", "x_latency", (bytes,), (bytes,)),
    "lolwut": signature("lolwut", "x_lolwut", (), (bytes,)),
    "module": signature("module", "x_module", (bytes,), (bytes,)),
    "debug": signature("debug", "x_debug", (bytes,), (bytes,)),
    "bitfield_ro": signature("bitfield_ro", "x_bitfield_ro", (Key(bytes),), (bytes,)),
    "pfmerge": signature(
        "pfmerge", "x_pfmerge", (Key(ExpiringMembersSet),), (Key(ExpiringMembersSet),)
    ),
    "command getkeysandflags": signature(
        "command getkeysandflags", "x_command_getkeysandflags", (bytes,), (bytes,)
    ),
    "acl help": signature("acl help", "x_acl_help", ()),
    "xinfo stream": signature("xinfo stream", "x_xinfo_stream", (Key(XStream),), (bytes,)),
}


def info_text(store: EmbeddedStore, sections: set[bytes]) -> bytes:
    """The embedded store's INFO: what it knows (its data, memory, commands); jshost puts its
    own server, clients and stats over it (`jshost.commands.info_cmd`)."""
    server = store.server
    dbs = {i: db for i, db in sorted(server.dbs.items()) if len(db._dict)}
    rss, peak = rss_bytes(), _peak_rss_bytes()
    maxmemory = store.maxmemory
    used = store.used_memory()  # the estimate `maxmemory` is compared with (`DatasetSize`)
    histograms = store.monitor.histograms
    body: dict[str, list[tuple[str, object]]] = {
        "server": [
            ("redis_version", store.version_text()), ("redis_git_sha1", "00000000"),
            ("redis_git_dirty", 0), ("redis_build_id", "0"), ("redis_mode", "standalone"),
            ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("arch_bits", 64), ("process_id", os.getpid()),
            ("uptime_in_seconds", int(time.time() - store.started)),
            ("executable", "jshost-embedded"),
        ],
        "clients": [("connected_clients", len(server.sockets)),
                    ("blocked_clients", len(store.parked))],
        "memory": [
            ("used_memory", used), ("used_memory_human", human(used)),
            ("used_memory_rss", rss), ("used_memory_rss_human", human(rss)),
            ("used_memory_peak", peak), ("used_memory_peak_human", human(peak)),
            ("used_memory_startup", store.started_rss), ("maxmemory", maxmemory),
            ("maxmemory_human", human(maxmemory)),
            ("maxmemory_policy", store.config_value(b"maxmemory-policy").decode()),
            ("mem_allocator", "python"),
        ],
        "persistence": [
            ("loading", 0), ("rdb_bgsave_in_progress", 0),
            ("rdb_last_save_time", int(getattr(server, "lastsave", 0) or store.started)),
            ("rdb_last_bgsave_status", "ok"), ("aof_enabled", 0),
            ("aof_rewrite_in_progress", 0),
        ],
        "stats": [
            ("expired_keys", store.expired_keys), ("evicted_keys", 0),
            ("pubsub_channels", len(server.subscribers)),
            ("pubsub_patterns", len(server.psubscribers)),
            ("pubsubshard_channels", len(getattr(server, "ssubscribers", ()))),
        ],
        "replication": _replication(store),
        "cpu": [],
        "modules": [],
        "commandstats": [
            (f"cmdstat_{name.decode('utf-8', 'replace')}",
             (f"calls={h.calls},usec={h.usec},usec_per_call={h.usec / max(1, h.calls):.2f},"
             "rejected_calls=0,failed_calls=0"))
            for name, h in sorted(histograms.items())
        ],
        "errorstats": [],
        "latencystats": [
            (f"latency_percentiles_usec_{name.decode('utf-8', 'replace')}",
             (f"p50={h.percentile(50):.3f},p99={h.percentile(99):.3f},"
             f"p99.9={h.percentile(99.9):.3f}"))
            for name, h in sorted(histograms.items())
        ],
        "cluster": [("cluster_enabled", 0)],
        "keyspace": [
            (f"db{i}", (f"keys={len(db._dict)},"
                       f"expires={sum(1 for item in db._dict.values() if item.expireat)},"
                       "avg_ttl=0"))
            for i, db in dbs.items()
        ],
    }
    defaults = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                "modules", "errorstats", "cluster", "keyspace")
    wanted = {s.decode("utf-8", "replace") for s in sections} or {"default"}
    if wanted & {"all", "everything"}:
        names = list(body)
    else:
        names = [n for n in body if n in wanted or ("default" in wanted and n in defaults)]
    parts = []
    for name in names:
        title = "CPU" if name == "cpu" else name.capitalize()
        parts.append("\r\n".join([f"# {title}", *(f"{k}:{v}" for k, v in body[name])]))
    return ("\r\n\r\n".join(parts) + "\r\n").encode() if parts else b""


def _replication(store: EmbeddedStore) -> list[tuple[str, object]]:
    """`# Replication`: a primary, or the replica REPLICAOF made it (it never connects)."""
    if store.replica_of is None:
        return [("role", "master"), ("connected_slaves", 0)]
    host, port = store.replica_of
    return [("role", "slave"), ("master_host", host.decode("utf-8", "replace")),
            ("master_port", port), ("master_link_status", "down"), ("slave_read_only", 1),
            ("connected_slaves", 0)]


def human(n: int) -> str:
    """Redis' bytesToHuman: 1023B, 1.00K, 12.34M, ..."""
    value = float(n)
    if value < 1024:
        return f"{n}B"
    for unit in ("K", "M", "G", "T", "P"):
        value /= 1024
        if value < 1024 or unit == "P":
            return f"{value:.2f}{unit}"
    return f"{value:.2f}P"  # pragma: no cover
