"""Command metadata, and the checks a command from JS goes through before it reaches the store.

The table is built from the reply of Redis 7's `COMMAND` (or `COMMAND INFO`): one entry per command,

    [name, arity, flags, first_key, last_key, step, acl_categories, tips, key_specs, subcommands]

where `subcommands` holds entries of the same shape named `parent|sub`. The remote store asks its
real Redis; the embedded store uses the bundled `redis_commands.json` (a real Redis 7's `COMMAND`,
see `_REDIS_72_PATCHES`) topped up with what fakeredis reports for the commands it adds.

Script-mode checks run in the order of Redis' `RM_Call`: the command exists, its
arity, `noscript`, then `no-writes`. jshost's own commands are added to every table as `noscript`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from jshost.errors import CommandErrors, SecurityErrors
from jshost.replies import SetReply, Status

#: jshost's own commands: never callable from JS. Module commands registered
#: without command info have arity -1 in Redis, so only the `noscript` refusal applies to them.
HOST_COMMANDS: tuple[str, ...] = (
    "rg.function",
    "rg.fcall",
    "rg.fcallasync",
    "tfunction",
    "tfcall",
    "tfcallasync",
    "rg.config_get",
    "rg.config_set",
    "tconfig_get",
    "tconfig_set",
)

#: Commands that wait for replicas/AOF: they block a client although `COMMAND` gives no flag.
_WAIT_COMMANDS = frozenset({b"wait", b"waitaof"})
#: Stream reads block only with the BLOCK option (they carry the `blocking` flag regardless).
_STREAM_READS = frozenset({b"xread", b"xreadgroup"})

_DATA_FILE = "redis_commands.json"
# Redis prints argv[0] and the argument list with %.128s (commandCheckExistence).
_ERR_NAME_LIMIT = 128


def _text(value: Any) -> str:
    """A name, flag or category from a `COMMAND` reply (bytes, Status or str) as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _texts(values: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(_text(v) for v in values or ())


def _plain(value: Any) -> Any:
    """A key-spec fragment with text keys and values, so replies and JSON read the same."""
    if isinstance(value, Mapping):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, str)):
        return _text(value)
    return value


# ------------------------------------------------------------------------------------------------
# Key specs
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One Redis 7 key specification: where the keys start, and how to find them from there."""

    begin_search: str  # "index", "keyword" or "unknown"
    index: int = 0  # begin_search index: position of the first key
    keyword: bytes = b""  # begin_search keyword: the keys follow this word ...
    startfrom: int = 0  # ... searched from here (negative: backwards from the end)
    find_keys: str = "range"  # "range", "keynum" or "unknown"
    lastkey: int = 0  # range: last key relative to the first (negative: from the end)
    keystep: int = 1  # range and keynum: distance between keys
    limit: int = 0  # range with lastkey -1: take 1/limit of the remaining arguments
    keynumidx: int = 0  # keynum: where the key count is, relative to the begin-search position
    firstkey: int = 0  # keynum: first key, relative to the begin-search position
    flags: frozenset[str] = frozenset()

    @classmethod
    def from_reply(cls, spec: Mapping[Any, Any]) -> KeySpec:
        """Build from one `key_specs` map of a `COMMAND` reply (or its JSON form)."""
        d = _plain(spec)
        bs, fk = d.get("begin_search", {}), d.get("find_keys", {})
        bs_spec, fk_spec = bs.get("spec", {}) or {}, fk.get("spec", {}) or {}
        return cls(
            begin_search=bs.get("type", "unknown"),
            index=int(bs_spec.get("index", 0)),
            keyword=str(bs_spec.get("keyword", "")).encode(),
            startfrom=int(bs_spec.get("startfrom", 0)),
            find_keys=fk.get("type", "unknown"),
            lastkey=int(fk_spec.get("lastkey", 0)),
            keystep=int(fk_spec.get("keystep", 1)),
            limit=int(fk_spec.get("limit", 0)),
            keynumidx=int(fk_spec.get("keynumidx", 0)),
            firstkey=int(fk_spec.get("firstkey", 0)),
            flags=frozenset(_texts(d.get("flags"))),
        )

    def _begin(self, args: Sequence[bytes]) -> int | None:
        """Position where the keys start, or None (keyword absent, unknown spec)."""
        if self.begin_search == "index":
            return self.index
        if self.begin_search != "keyword":
            return None
        argc = len(args)
        # Same walk as getKeysUsingKeySpecs: forwards to argc-1 (exclusive), or backwards to 1.
        start = self.startfrom if self.startfrom > 0 else argc + self.startfrom
        end = argc - 1 if self.startfrom > 0 else 0
        step = 1 if start <= end else -1
        keyword = self.keyword.lower()
        for i in range(start, end, step):
            if i >= argc or i < 1:
                break
            if args[i].lower() == keyword:
                return i + 1
        return None

    def positions(self, args: Sequence[bytes]) -> range:
        """Positions of the keys in `args` (command name at 0); empty when none can be found."""
        first = self._begin(args)
        if first is None:
            return range(0)
        argc = len(args)
        if self.find_keys == "range":
            if self.lastkey >= 0:
                last = first + self.lastkey
            elif not self.limit:
                last = argc + self.lastkey
            else:
                last = first + (argc - first) // self.limit + self.lastkey
            step = self.keystep
        elif self.find_keys == "keynum":
            at = first + self.keynumidx
            try:
                numkeys = int(args[at])
            except (IndexError, ValueError):
                return range(0)
            if numkeys < 0:
                return range(0)
            first += self.firstkey
            last = first + numkeys - 1
            step = self.keystep
        else:
            return range(0)
        # Arguments missing for a variadic command: no keys, the command reports the error itself.
        return range(first, min(last, argc - 1) + 1, max(step, 1))


# ------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """Metadata of one command or subcommand, as `COMMAND` describes it."""

    name: str  # the full name, lower-case: "get", "config|get"
    arity: int
    flags: frozenset[str] = frozenset()
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    acl_categories: tuple[str, ...] = ()
    tips: tuple[str, ...] = ()
    key_specs: tuple[KeySpec, ...] = ()
    subcommands: Mapping[bytes, CommandInfo] = field(default_factory=dict)

    @classmethod
    def from_reply(cls, entry: Sequence[Any]) -> CommandInfo:
        """Build from one entry of a `COMMAND` reply (typed RESP3 values, RESP2 lists or JSON)."""
        name = _text(entry[0]).lower().replace(" ", "|")  # fakeredis names subcommands "a b"
        padded = list(entry) + [None] * (10 - len(entry))
        subs = (cls.from_reply(sub) for sub in padded[9] or ())
        return cls(
            name=name,
            arity=int(padded[1]),
            flags=frozenset(_texts(padded[2])),
            first_key=int(padded[3] or 0),
            last_key=int(padded[4] or 0),
            step=int(padded[5] or 0),
            acl_categories=_texts(padded[6]),
            tips=_texts(padded[7]),
            key_specs=tuple(KeySpec.from_reply(s) for s in padded[8] or ()),
            subcommands={sub.subname: sub for sub in subs},
        )

    def to_reply(self) -> list[Any]:
        """The entry in the JSON-friendly shape of a `COMMAND` reply (inverse of `from_reply`)."""
        return [
            self.name,
            self.arity,
            sorted(self.flags),
            self.first_key,
            self.last_key,
            self.step,
            list(self.acl_categories),
            list(self.tips),
            [_spec_to_reply(s) for s in self.key_specs],
            # sorted: Redis lists subcommands in its hash table's (random) order
            [sub.to_reply() for sub in sorted(self.subcommands.values(), key=_by_name)],
        ]

    def to_resp3(self) -> list[Any]:
        """The entry as Redis 7 sends it in `COMMAND` / `COMMAND INFO` over RESP3 (flags and
        categories as sets of simple strings, key specs as maps)."""
        return [
            self.name.encode(),
            self.arity,
            SetReply(Status(f.encode()) for f in sorted(self.flags)),
            self.first_key,
            self.last_key,
            self.step,
            SetReply(Status(c.encode()) for c in self.acl_categories),
            SetReply(t.encode() for t in self.tips),
            SetReply(_spec_to_resp3(s) for s in self.key_specs),
            # Redis sends an empty set when there are no subcommands, else an array.
            [sub.to_resp3() for sub in self.subcommands.values()] or SetReply(),
        ]

    @property
    def subname(self) -> bytes:
        """The lookup key of this entry: the part after `|` for a subcommand, else the name."""
        return self.name.rpartition("|")[2].encode()

    @property
    def is_write(self) -> bool:
        return "write" in self.flags

    @property
    def is_noscript(self) -> bool:
        return "noscript" in self.flags

    def arity_ok(self, argc: int) -> bool:
        """Redis' commandCheckArity: exact for a positive arity, a minimum for a negative one."""
        return argc == self.arity if self.arity > 0 else argc >= -self.arity

    def key_positions(self, args: Sequence[bytes]) -> list[int]:
        """Positions of the keys in `args`: from the key specs, else from first/last/step."""
        if self.key_specs:
            return [i for spec in self.key_specs for i in spec.positions(args)]
        if self.first_key <= 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(args) + self.last_key
        return list(range(self.first_key, min(last, len(args) - 1) + 1, max(self.step, 1)))


def _by_name(info: CommandInfo) -> str:
    return info.name


def _spec_to_reply(spec: KeySpec) -> dict[str, Any]:
    if spec.begin_search == "index":
        bs: dict[str, Any] = {"type": "index", "spec": {"index": spec.index}}
    elif spec.begin_search == "keyword":
        kw = {"keyword": spec.keyword.decode(), "startfrom": spec.startfrom}
        bs = {"type": "keyword", "spec": kw}
    else:
        bs = {"type": "unknown", "spec": {}}
    if spec.find_keys == "range":
        fk_spec = {"lastkey": spec.lastkey, "keystep": spec.keystep, "limit": spec.limit}
    elif spec.find_keys == "keynum":
        fk_spec = {"keynumidx": spec.keynumidx, "firstkey": spec.firstkey, "keystep": spec.keystep}
    else:
        fk_spec = {}
    return {
        "flags": sorted(spec.flags),
        "begin_search": bs,
        "find_keys": {"type": spec.find_keys, "spec": fk_spec},
    }


def _resp3_map(value: Any) -> Any:
    """JSON-shaped key-spec fragment as RESP3 values (text as bulk strings)."""
    if isinstance(value, dict):
        return {k.encode(): _resp3_map(v) for k, v in value.items()}
    return value.encode() if isinstance(value, str) else value


def _spec_to_resp3(spec: KeySpec) -> dict[bytes, Any]:
    plain = _spec_to_reply(spec)
    return {
        b"flags": SetReply(Status(f.encode()) for f in plain["flags"]),
        b"begin_search": _resp3_map(plain["begin_search"]),
        b"find_keys": _resp3_map(plain["find_keys"]),
    }


def _host_command(name: str) -> CommandInfo:
    return CommandInfo(name=name, arity=-1, flags=frozenset({"noscript", "module"}))


# ------------------------------------------------------------------------------------------------
# Error texts built the way Redis builds them
# ------------------------------------------------------------------------------------------------


def _c_string(arg: bytes) -> bytes:
    """What printf's %s prints of an sds: up to the first NUL."""
    nul = arg.find(b"\0")
    return arg if nul < 0 else arg[:nul]


def _arg_text(arg: bytes) -> str:
    """Bytes as text for an error template, losslessly (undone by `_error_text`)."""
    return arg.decode("utf-8", "surrogateescape")


def _error_text(text: str) -> str:
    """Final error text: CR and LF mapped to spaces as Redis does (one protocol line), and bytes
    that are not UTF-8 (including a character cut by the 128-byte limits) replaced."""
    raw = text.encode("utf-8", "surrogateescape").replace(b"\r", b" ").replace(b"\n", b" ")
    return raw.decode("utf-8", "replace")


def unknown_command_error(args: Sequence[bytes]) -> str:
    """`ERR unknown command '<cmd>', with args beginning with: '<a>' '<b>' ` (commandCheckExistence).

    The name is cut to 128 bytes; arguments are added while the list is under 128 bytes, each
    cut to what is left of those 128.
    """
    listed = b""
    for arg in args[1:]:
        if len(listed) >= _ERR_NAME_LIMIT:
            break
        listed += b"'" + _c_string(arg)[: _ERR_NAME_LIMIT - len(listed)] + b"' "
    name = _c_string(args[0])[:_ERR_NAME_LIMIT] if args else b""
    text = CommandErrors.ERR_UNKNOWN_COMMAND.format(name=_arg_text(name), args=_arg_text(listed))
    return _error_text(text)


def unknown_subcommand_error(args: Sequence[bytes]) -> str:
    """`ERR unknown subcommand '<sub>'. Try <CMD> HELP.` for a container with an unknown sub."""
    sub = _arg_text(_c_string(args[1])[:_ERR_NAME_LIMIT])
    container = _arg_text(_c_string(args[0]).upper())
    return _error_text(CommandErrors.ERR_UNKNOWN_SUBCOMMAND.format(sub=sub, container=container))


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------


class CommandTable:
    """Every command the store knows, looked up the way Redis does (`lookupCommandLogic`)."""

    def __init__(self, commands: Iterable[CommandInfo], *, add_host_commands: bool = True) -> None:
        self._commands: dict[bytes, CommandInfo] = {}
        for info in commands:
            self._add(info)
        if add_host_commands:
            for name in HOST_COMMANDS:
                self._commands[name.encode()] = _host_command(name)

    def _add(self, info: CommandInfo, *, replace: bool = True) -> None:
        """Add a command; a `parent|sub` entry listed on its own (fakeredis lists subcommands
        that way) goes under its parent, which is made up as a container if missing."""
        parent, bar, _ = info.name.partition("|")
        if not bar:
            key = info.name.encode()
            old = self._commands.get(key)
            if old is None or replace:
                self._commands[key] = info
            elif info.subcommands:  # keep the old entry, take the subcommands it lacks
                subs = {**info.subcommands, **old.subcommands}
                self._commands[key] = dataclasses.replace(old, subcommands=subs)
            return
        container = self._commands.get(parent.encode()) or CommandInfo(name=parent, arity=-2)
        if info.subname in container.subcommands and not replace:
            return
        subs = {**container.subcommands, info.subname: info}
        self._commands[parent.encode()] = dataclasses.replace(container, subcommands=subs)

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_command_reply(cls, reply: Iterable[Any], **kwargs: Any) -> CommandTable:
        """Build from the reply of `COMMAND` (entries that are None, as `COMMAND INFO` gives
        for unknown names, are skipped)."""
        return cls((CommandInfo.from_reply(e) for e in reply if e), **kwargs)

    @classmethod
    def bundled(cls) -> CommandTable:
        """The table of Redis 7.2 shipped with jshost (see `_REDIS_72_PATCHES`)."""
        return _bundled_table()

    def merged(self, other: CommandTable) -> CommandTable:
        """A new table with this table's commands and subcommands, plus those of `other` that
        it lacks."""
        table = CommandTable((), add_host_commands=False)
        table._commands = dict(self._commands)
        for info in other._commands.values():
            table._add(info, replace=False)
        return table

    def commands(self, *, host_commands: bool = False) -> list[CommandInfo]:
        """Every top-level entry, by name (jshost's own only if asked)."""
        host = () if host_commands else tuple(n.encode() for n in HOST_COMMANDS)
        return [c for k, c in sorted(self._commands.items()) if k not in host]

    def to_reply(self) -> list[list[Any]]:
        """All entries, JSON-friendly, in the shape of a `COMMAND` reply (host commands left out)."""
        return [c.to_reply() for c in self.commands()]

    # -- lookup ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._commands)

    def __contains__(self, name: object) -> bool:
        return self.get(name) is not None if isinstance(name, (str, bytes)) else False

    def get(self, name: str | bytes) -> CommandInfo | None:
        """The entry for a full name such as `get` or `config|get` (case-insensitive)."""
        key = (name.encode() if isinstance(name, str) else name).lower()
        parent, bar, sub = key.partition(b"|")
        info = self._commands.get(parent)
        if info is None or not bar:
            return info
        return info.subcommands.get(sub)

    def lookup(self, args: Sequence[bytes]) -> CommandInfo | None:
        """The entry `args` runs: the subcommand for a container (`CONFIG GET` → `config|get`),
        the container itself when it is called alone, None when unknown."""
        if not args:
            return None
        info = self._commands.get(args[0].lower())
        if info is None or len(args) == 1 or not info.subcommands:
            return info
        return info.subcommands.get(args[1].lower())

    # -- checks ----------------------------------------------------------------------------------

    def check_existence(self, args: Sequence[bytes]) -> str | None:
        """Redis' unknown-command / unknown-subcommand error for `args`, or None if it exists."""
        if self.lookup(args) is not None:
            return None
        container = self._commands.get(args[0].lower()) if args else None
        if container is not None and container.subcommands:
            return unknown_subcommand_error(args)
        return unknown_command_error(args or [b""])

    def check_command(self, args: Sequence[bytes]) -> str | None:
        """Redis' own checks before any command runs: it exists, then its arity (None: passed)."""
        info = self.lookup(args)
        if info is None:
            return self.check_existence(args)
        if not info.arity_ok(len(args)):
            return CommandErrors.ERR_WRONG_ARITY.format(fullname=info.name)
        return None

    def check_script_call(self, args: Sequence[bytes], no_writes: bool) -> str | None:
        """The error text `RM_Call` in script mode gives for `args`, or None if it may run.

        Order: unknown command, arity, `noscript`, then `write` under `no_writes`.
        """
        info = self.lookup(args)
        if info is None:
            return self.check_existence(args)
        if not info.arity_ok(len(args)):
            return CommandErrors.ERR_WRONG_ARITY.format(fullname=info.name)
        if "noscript" in info.flags:
            return CommandErrors.ERR_NOSCRIPT.format(fullname=info.name)
        if no_writes and "write" in info.flags:
            return CommandErrors.ERR_NO_WRITES.format(fullname=info.name)
        return self.check_internal(args)

    def check_internal(self, args: Sequence[bytes]) -> str | None:
        """The refusal for a command that would write a key, or publish on a channel, whose
        name starts with `jshost:` (jshost's own: its trigger lease, stream positions, library
        change and fence channels); None for any other command, and for reads."""
        for arg in args[1:]:  # the common case, kept cheap: it is asked of every command
            if arg.startswith(INTERNAL_PREFIX):
                break
        else:
            return None
        name = args[0].lower()
        if name in _PUBLISHES:
            if len(args) > 1 and args[1].startswith(INTERNAL_PREFIX):
                return SecurityErrors.INTERNAL_CHANNEL.format(name=name.decode(),
                                                              channel=_text(args[1]))
            return None
        info = self.lookup(args)
        if info is None:
            return None
        for key in self._written_keys(info, args):
            if key.startswith(INTERNAL_PREFIX):
                return SecurityErrors.INTERNAL_KEY.format(name=info.name, key=_text(key))
        return None

    @staticmethod
    def _written_keys(info: CommandInfo, args: Sequence[bytes]) -> list[bytes]:
        """The keys `args` may change: those of its write key specs (RW, OW, RM), or every key
        of a `write` command that has no key specs."""
        if info.key_specs:
            positions = [i for spec in info.key_specs if spec.flags & _WRITE_KEY_FLAGS
                         for i in spec.positions(args)]
        elif "write" in info.flags:
            positions = info.key_positions(args)
        else:
            positions = []
        if info.name == "sort":  # its STORE key has an "incomplete" spec
            positions += _sort_store_position(args)
        return [args[i] for i in positions if i < len(args)]

    def arity_error(self, args: Sequence[bytes]) -> str:
        """The wrong-arity error naming the command's full name (`config|get`)."""
        info = self.lookup(args)
        name = info.name if info is not None else _text(args[0]).lower()
        return CommandErrors.ERR_WRONG_ARITY.format(fullname=name)

    # -- key and behaviour queries ---------------------------------------------------------------

    def keys_of(self, args: Sequence[bytes]) -> list[bytes]:
        """The keys `args` names, in argument order (duplicates kept), as COMMAND GETKEYS finds
        them from the key specs; [] for unknown commands."""
        info = self.lookup(args)
        if info is None:
            return []
        positions = info.key_positions(args)
        if info.name == "sort":  # its STORE key has an "incomplete" spec: Redis uses sortGetKeys
            positions += _sort_store_position(args)
        return [args[i] for i in positions]

    def is_write(self, args: Sequence[bytes]) -> bool:
        """Whether `args` is a command with the `write` flag."""
        info = self.lookup(args)
        return info is not None and "write" in info.flags

    def is_blocking(self, args: Sequence[bytes]) -> bool:
        """Whether `args` may block its client: `blocking` commands (XREAD / XREADGROUP only
        with BLOCK), and WAIT / WAITAOF."""
        if not args:
            return False
        name = args[0].lower()
        if name in _WAIT_COMMANDS:
            return True
        info = self.lookup(args)
        if info is None or "blocking" not in info.flags:
            return False
        if name in _STREAM_READS:
            return _has_block_option(args)
        return True


#: Keys and channels jshost keeps for itself: clients and libraries may read them, not write them.
INTERNAL_PREFIX = b"jshost:"
_WRITE_KEY_FLAGS = frozenset(("RW", "OW", "RM"))
_PUBLISHES = frozenset((b"publish", b"spublish"))


def _sort_store_position(args: Sequence[bytes]) -> list[int]:
    """Position of SORT's STORE destination, found the way Redis' sortGetKeys does (the last
    STORE wins; LIMIT skips 2 arguments, GET and BY skip 1)."""
    skips = {b"limit": 2, b"get": 1, b"by": 1}
    found: list[int] = []
    i = 2
    while i < len(args):
        low = args[i].lower()
        if low in skips:
            i += skips[low]
        elif low == b"store" and i + 1 < len(args):
            found = [i + 1]
        i += 1
    return found


def _has_block_option(args: Sequence[bytes]) -> bool:
    """Whether an XREAD/XREADGROUP has BLOCK among its options (before STREAMS)."""
    for arg in args[1:]:
        low = arg.lower()
        if low == b"streams":
            return False
        if low == b"block":
            return True
    return False


# ------------------------------------------------------------------------------------------------
# The bundled Redis table
# ------------------------------------------------------------------------------------------------


def _entry(name: str, arity: int, flags: list[str], tips: list[str]) -> list[Any]:
    """A JSON-shaped `COMMAND` entry for a connection command (no keys, @slow @connection)."""
    return [name, arity, flags, 0, 0, 0, ["@slow", "@connection"], tips, [], []]


#: How the bundled file differs from the server it was recorded on (redis-server 7.0.15, the
#: newest Debian 12 ships): Redis 7.2 dropped `noscript` from the blocking list/zset commands (they
#: run without blocking from scripts and `RM_Call`, which is what tf `callAsync('blpop', ...)`
#: relies on), and added CLIENT SETINFO, CLIENT NO-TOUCH and WAITAOF.
_REDIS_72_PATCHES: dict[str, Any] = {
    "drop_noscript": ["blpop", "brpop", "brpoplpush", "blmove", "bzpopmin", "bzpopmax"],
    "add": [
        _entry(
            "client|setinfo",
            4,
            ["loading", "noscript", "stale"],
            ["request_policy:all_nodes", "response_policy:all_succeeded"],
        ),
        _entry("client|no-touch", 3, ["loading", "noscript", "stale"], []),
        _entry(
            "waitaof", 4, ["noscript"], ["request_policy:all_shards", "response_policy:agg_min"]
        ),
    ],
}


def apply_redis_72_patches(entries: list[list[Any]]) -> list[list[Any]]:
    """Apply `_REDIS_72_PATCHES` to JSON-shaped `COMMAND` entries (used when regenerating)."""
    by_name = {e[0]: e for e in entries}
    for name in _REDIS_72_PATCHES["drop_noscript"]:
        if name in by_name:
            by_name[name][2] = [f for f in by_name[name][2] if f != "noscript"]
    for entry in _REDIS_72_PATCHES["add"]:
        parent, _, _ = entry[0].partition("|")
        if "|" not in entry[0]:
            by_name.setdefault(entry[0], list(entry))
        elif parent in by_name and all(s[0] != entry[0] for s in by_name[parent][9]):
            by_name[parent][9].append(list(entry))
    return sorted(by_name.values(), key=lambda e: e[0])


@functools.lru_cache(maxsize=1)
def _bundled_table() -> CommandTable:
    text = resources.files(__package__).joinpath(_DATA_FILE).read_text(encoding="utf-8")
    return CommandTable.from_command_reply(json.loads(text)["commands"])


def record_from_redis(host: str = "127.0.0.1", port: int = 6379) -> dict[str, Any]:
    """Record a real Redis' `COMMAND` as the bundled data file's content (7.2 patches applied).

    Usage: `python -m jshost.store.command_table PORT > jshost/store/redis_commands.json`.
    """
    import redis  # a dev-time tool: keep redis-py out of the import path of the table

    client = redis.Redis(host=host, port=port, protocol=3)
    conn = client.connection_pool.get_connection()
    try:
        # Raw read: redis-py's COMMAND callback reshapes the reply (send_command is unannotated).
        conn.send_command("COMMAND")  # type: ignore[no-untyped-call]
        reply = conn.read_response()
        version = client.info("server")["redis_version"]
    finally:
        client.connection_pool.release(conn)
        client.close()
    table = CommandTable.from_command_reply(reply, add_host_commands=False)
    return {
        "source": f"COMMAND of redis-server {version}, with jshost's Redis 7.2 patches",
        "patches": _REDIS_72_PATCHES,
        "commands": apply_redis_72_patches(table.to_reply()),
    }


if __name__ == "__main__":  # pragma: no cover - dev tool
    data = record_from_redis(port=int(sys.argv[1]) if len(sys.argv) > 1 else 6379)
    # One command per line: small diffs when the file is regenerated.
    head = {k: v for k, v in data.items() if k != "commands"}
    lines = [json.dumps(e, separators=(",", ":")) for e in data["commands"]]
    body = ",\n".join(lines)
    sys.stdout.write(json.dumps(head)[:-1] + ', "commands": [\n' + body + "\n]}\n")
