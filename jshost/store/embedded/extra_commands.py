"""Redis commands fakeredis lacks (or gets wrong), added to the embedded store's connection.

They run through fakeredis' own command path (ACL, arity, MULTI queueing): `EXTRA_SIGNATURES`
declares them the way fakeredis declares its commands, and `StoreSocket._name_to_func` finds them
there first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fakeredis._command_args_parsing import Int, Timeout
from fakeredis._commands import Key, Signature
from fakeredis._core._database import CommandItem
from fakeredis._helpers import OK, SimpleError, SimpleString, compile_pattern
from fakeredis._msgs import FLAG_NO_SCRIPT, WRONGTYPE_MSG
from fakeredis._socket import FakeSocket

from jshost.errors import ReplicaErrors, StoreErrors
from jshost.store.command_table import CommandTable
from jshost.store.embedded.server_commands import CONFIG_ALIASES, SIGNATURES, info_text
from jshost.store.embedded.server_commands import CONFIG_DEFAULTS as SERVER_CONFIG_DEFAULTS
from jshost.store.embedded.signature import signature
from jshost.store.embedded.tracking import SIGNATURES as TRACKING_SIGNATURES

if TYPE_CHECKING:
    from jshost.store.embedded.session import EmbeddedSession

#: CONFIG GET's defaults: Redis 7.2's (`server_commands`); the embedded store has no port of its
#: own (jshost answers CONFIG GET port and timeout from its listener, `jshost.listener_config`).
CONFIG_DEFAULTS: dict[bytes, bytes] = {**SERVER_CONFIG_DEFAULTS, b"port": b"0", b"timeout": b"0"}


def _signatures() -> dict[str, Signature]:
    """fakeredis `Signature`s of the commands added here (arity, as fakeredis checks it)."""
    return {
        "touch": signature("touch", "x_touch", (bytes,), (bytes,)),
        "wait": signature("wait", "x_wait", (Int, Int)),
        "waitaof": signature("waitaof", "x_waitaof", (Int, Int, Int)),
        "info": signature("info", "x_info", (), (bytes,)),
        "config get": signature("config get", "x_config_get", (bytes,), (bytes,)),
        "config resetstat": signature("config resetstat", "x_config_resetstat", ()),
        "role": signature("role", "x_role", ()),
        "replicaof": signature("replicaof", "x_replicaof", (bytes, bytes), flags=FLAG_NO_SCRIPT),
        "slaveof": signature("slaveof", "x_replicaof", (bytes, bytes), flags=FLAG_NO_SCRIPT),
        # fakeredis' BLMOVE answers a missing source at once, before it could block: replaced.
        "blmove": signature(
            "blmove", "x_blmove", (bytes, bytes, bytes, bytes, Timeout), (), flags=FLAG_NO_SCRIPT
        ),
        # COMMAND from jshost's table: Redis 7.2's metadata rather than fakeredis' partial one.
        "command": signature("command", "x_command", ()),
        "command info": signature("command info", "x_command_info", (), (bytes,)),
        "command count": signature("command count", "x_command_count", ()),
        "command list": signature("command list", "x_command_list", (), (bytes,)),
        "command getkeys": signature("command getkeys", "x_command_getkeys", (bytes,), (bytes,)),
        "command docs": signature("command docs", "x_command_docs", (), (bytes,)),
        # Redis' RDB encoding instead of fakeredis' pickles (`jshost.store.embedded.socket`).
        "dump": signature("dump", "x_dump", (Key(missing_return=None),)),
        "restore": signature("restore", "x_restore", (Key(), bytes, bytes), (bytes,)),
        # OBJECT, MEMORY, SLOWLOG, LATENCY, ... (`server_commands`).
        **SIGNATURES,
        # CLIENT TRACKING, CACHING, TRACKINGINFO (`tracking`).
        **TRACKING_SIGNATURES,
    }


EXTRA_SIGNATURES = _signatures()


class ExtraCommands(FakeSocket):
    """The commands of `EXTRA_SIGNATURES` (`StoreSocket` is one)."""

    _session: EmbeddedSession

    def x_touch(self, *keys: bytes) -> int:
        return sum(1 for key in keys if key in self._db)

    def x_wait(self, numreplicas: int, timeout: int) -> int:
        if timeout < 0:
            raise SimpleError(StoreErrors.TIMEOUT_NEGATIVE)
        if numreplicas <= 0:
            return 0
        # No replica will ever acknowledge: wait out the timeout, then answer 0 replicas.
        answered: int = self._blocking(timeout / 1000.0, lambda _first: None, lambda _none: 0)
        return answered

    def x_waitaof(self, numlocal: int, numreplicas: int, timeout: int) -> list[int]:
        if timeout < 0:
            raise SimpleError(StoreErrors.TIMEOUT_NEGATIVE)
        if numlocal > 0:
            raise SimpleError(StoreErrors.WAITAOF_APPENDONLY)
        if numreplicas <= 0:
            return [0, 0]
        answered: list[int] = self._blocking(
            timeout / 1000.0, lambda _first: None, lambda _none: [0, 0]
        )
        return answered

    def x_config_get(self, *patterns: bytes) -> dict[bytes, bytes]:
        params = dict(CONFIG_DEFAULTS)
        params.update({k.lower(): v for k, v in self._server.config.items()})
        params.update({alias: params[name] for alias, name in CONFIG_ALIASES.items()})
        regexes = [compile_pattern(p.lower()) for p in patterns]
        return {k: v for k, v in params.items() if any(r.match(k) for r in regexes)}

    def x_replicaof(self, host: bytes, port: bytes) -> Any:
        """REPLICAOF / SLAVEOF: the role is recorded (INFO, ROLE, READONLY), nothing connects."""
        store = self._session.store
        if host.lower() == b"no" and port.lower() == b"one":
            store.replica_of = None
            return OK
        try:
            number = int(port)
        except ValueError:
            number = -1
        if not 0 <= number <= 65535 or not port.strip(b"+-").isdigit():
            raise SimpleError(ReplicaErrors.INVALID_MASTER_PORT)
        if store.replica_of == (host, number):
            return SimpleString(ReplicaErrors.ALREADY_CONNECTED.encode())
        store.replica_of = (host, number)
        return OK

    def x_info(self, *sections: bytes) -> bytes:
        return info_text(self._session.store, {s.lower() for s in sections})

    def x_blmove(
        self, source: bytes, destination: bytes, wherefrom: bytes, whereto: bytes, timeout: float
    ) -> Any:
        ends = (wherefrom.lower(), whereto.lower())
        if not all(end in (b"left", b"right") for end in ends):
            raise SimpleError(StoreErrors.SYNTAX_ERROR)
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
        target = self._session.store.replica_of
        if target is None:
            return [b"master", 0, []]
        return [b"slave", target[0], target[1], b"connect", -1]

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
            raise SimpleError(StoreErrors.SYNTAX_ERROR)
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
        raise SimpleError(StoreErrors.SYNTAX_ERROR)

    def x_command_getkeys(self, *args: bytes) -> list[bytes]:
        table = self._table()
        info = table.lookup(args)
        if info is None:
            raise SimpleError(StoreErrors.GETKEYS_INVALID_COMMAND)
        if not info.arity_ok(len(args)):
            raise SimpleError(StoreErrors.GETKEYS_INVALID_ARITY)
        keys = table.keys_of(args)
        if not keys:
            raise SimpleError(StoreErrors.GETKEYS_NO_KEYS)
        return keys

    def x_command_docs(self, *names: bytes) -> dict[bytes, Any]:
        return {}  # no documentation is bundled; an empty map is what a client can cope with
