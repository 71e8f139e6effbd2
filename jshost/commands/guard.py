"""The client commands jshost refuses to pass to its store, whoever sends them (docs/security.md).

jshost fronts the store for its clients, so it decides what reaches it. `Guard.check(argv)` runs
for every client command after the checks of `processCommand` and before it is queued (MULTI) or
run, so a refusal inside MULTI makes EXEC answer EXECABORT, as an ACL refusal does in Redis:

* **Both stores.** Writing a key, or publishing on a channel, whose name starts with `jshost:`
  (`CommandTable.check_internal`): jshost keeps its trigger lease, stream positions and change
  announcements there. Reading them stays allowed.
* **A real Redis behind jshost (`--backend`).**
  - Administrative commands that would hand the backend to a client: replication (REPLICAOF,
    SLAVEOF, FAILOVER, SYNC, PSYNC, REPLCONF), MODULE, CONFIG REWRITE, CLUSTER's administrative sub-commands, PFDEBUG / PFSELFTEST, and CONFIG SET of the
    names in `PROTECTED_CONFIGS` (files and servers the backend would use). The setting
    `admin-commands yes` lets them through.
  - DEBUG: RELOAD, LOADAOF and PROTOCOL pass with `enable-debug-command yes` (the backend's own
    `enable-debug-command` applies too); with `admin-commands yes`, any DEBUG passes.
  - The Redis functions that hold jshost's libraries (`jshost_<hex>`): FUNCTION LOAD of a
    library of that name, FUNCTION DELETE of one, FUNCTION FLUSH (it would delete them all) and
    FUNCTION RESTORE are refused; RG.FUNCTION / TFUNCTION manage libraries.
  - CONFIG SET notify-keyspace-events to a value without the classes triggers need (E, A, m)
    while a library has a trigger (logged).
  `admin-commands` never lets anything reveal or change jshost's own credentials (CONFIG
  GET/SET of `requirepass`, `masterauth`, ..., and ACL: `jshost.commands.gears`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from jshost import listener_config
from jshost.errors import SecurityErrors
from jshost.host.archive import LIBRARY_PREFIX

if TYPE_CHECKING:
    from jshost.commands.dispatch import ServerContext

log = logging.getLogger("jshost.server")

Check = Callable[[list[bytes]], "str | None"]

#: Administrative commands refused on a backend (unless `admin-commands yes`): by name, or
#: (name, sub-command).
ADMIN_COMMANDS: Final = frozenset(
    (b"replicaof", b"slaveof", b"failover", b"sync", b"psync", b"replconf", b"module",
     b"pfdebug", b"pfselftest")
)
ADMIN_SUBCOMMANDS: Final = frozenset(((b"config", b"rewrite"),))
#: CONFIG SET names refused on a backend (unless `admin-commands yes`): files the backend would
#: write or read, addresses it would listen on, and the switches that guard all that. (The
#: names of jshost's own listener among them — port, bind, tls-*, protected-mode, unixsocket —
#: are answered by the listener, `jshost.listener_config`, and never reach the backend.)
PROTECTED_CONFIGS: Final = frozenset(
    (b"dir", b"dbfilename", b"logfile", b"aclfile", b"appendfilename", b"appenddirname",
     b"pidfile", b"unixsocket", b"unixsocketperm", b"bind", b"port", b"tls-port",
     b"protected-mode", b"tls-cert-file", b"tls-key-file", b"tls-ca-cert-file",
     b"tls-ca-cert-dir", b"tls-dh-params-file", b"tls-client-cert-file",
     b"tls-client-key-file", b"replicaof", b"slaveof", b"cluster-config-file",
     b"enable-protected-configs", b"enable-debug-command", b"enable-module-command",
     b"rename-command", b"loadmodule", b"include")
)
#: DEBUG sub-commands RedisGears' own tests use (DEBUG PROTOCOL from JS; DEBUG RELOAD, LOADAOF).
DEBUG_ALLOWED: Final = frozenset((b"reload", b"loadaof", b"protocol"))
#: The keyspace-event classes jshost's triggers need (`RemoteStore.start_keyspace_events`).
NOTIFY_NEEDED: Final = "EAm"
_SPACE: Final = b" \t\n\v\f\r"
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES: Final = {ord("n"): ord("\n"), ord("r"): ord("\r"), ord("t"): ord("\t"),
                   ord("b"): ord("\b"), ord("a"): 7}


class Guard:
    """Decides which client commands are refused (see the module docstring)."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.table = ctx.table
        self.remote = not ctx.store_in_process
        self._internal = self.table.check_internal
        self._rules: dict[bytes, Check] = {}
        if self.remote:
            self._rules = {
                **dict.fromkeys(ADMIN_COMMANDS, self._admin),
                b"cluster": self._cluster,
                b"config": self._config,
                b"debug": self._debug,
                b"function": self._function,
            }

    def check(self, argv: list[bytes]) -> str | None:
        """The error text if `argv` must not run, else None (asked of every command)."""
        rules = self._rules
        if rules:
            rule = rules.get(argv[0].lower())
            if rule is not None:
                problem = rule(argv)
                if problem is not None:
                    return problem
        return self._internal(argv)

    # -- settings ------------------------------------------------------------------------------

    @property
    def admin_allowed(self) -> bool:
        return bool(self.ctx.host.settings["admin-commands"])

    @property
    def debug_allowed(self) -> bool:
        return bool(self.ctx.host.settings["enable-debug-command"])

    # -- rules (a real Redis behind jshost) ----------------------------------------------------

    def _admin(self, argv: list[bytes]) -> str | None:
        if self.admin_allowed:
            return None
        return SecurityErrors.ADMIN_COMMAND.format(name=_name(argv[:1]))

    def _sub_admin(self, argv: list[bytes]) -> str | None:
        pair = (argv[0].lower(), argv[1].lower() if len(argv) > 1 else b"")
        if pair not in ADMIN_SUBCOMMANDS or self.admin_allowed:
            return None
        return SecurityErrors.ADMIN_COMMAND.format(name=_name(argv[:2]))

    def _cluster(self, argv: list[bytes]) -> str | None:
        info = self.table.lookup(argv)
        if info is None or "admin" not in info.flags or self.admin_allowed:
            return None
        return SecurityErrors.ADMIN_COMMAND.format(name=_name(argv[:2]))

    def _config(self, argv: list[bytes]) -> str | None:
        sub = argv[1].lower() if len(argv) > 1 else b""
        if sub != b"set":
            return self._sub_admin(argv)
        for name, value in zip(argv[2::2], argv[3::2]):
            lowered = name.lower()
            if listener_config.owns(lowered):
                continue  # jshost's own listener answers it; it never reaches the backend
            if lowered in PROTECTED_CONFIGS and not self.admin_allowed:
                return SecurityErrors.PROTECTED_CONFIG.format(name=_text(lowered))
            if lowered == b"notify-keyspace-events":
                problem = self._notify_config(value)
                if problem is not None:
                    return problem
        return None

    def _notify_config(self, value: bytes) -> str | None:
        """notify-keyspace-events must keep what triggers need while any library has one (the
        libraries, and so the triggers, are the same on every jshost in front of the backend;
        the one running them also puts the flags back if they are changed elsewhere)."""
        if not self.ctx.host.triggers.has_triggers():
            return None
        flags = set(_text(value))
        if "A" not in flags and set("g$lshzxetd") <= flags:
            flags.add("A")
        if all(flag in flags for flag in NOTIFY_NEEDED):
            return None
        log.warning("refused CONFIG SET notify-keyspace-events %r from a client: triggers need "
                    "%s", _text(value), NOTIFY_NEEDED)
        return SecurityErrors.NOTIFY_CONFIG.format(needed=NOTIFY_NEEDED, value=_text(value))

    def _debug(self, argv: list[bytes]) -> str | None:
        sub = argv[1].lower() if len(argv) > 1 else b""
        if self.admin_allowed or (sub in DEBUG_ALLOWED and self.debug_allowed):
            return None
        return SecurityErrors.DEBUG_COMMAND.format(sub=_text(sub))

    def _function(self, argv: list[bytes]) -> str | None:
        """FUNCTION LOAD / DELETE / FLUSH / RESTORE that would touch jshost's libraries."""
        sub = argv[1].lower() if len(argv) > 1 else b""
        if sub == b"load":
            name = library_name(argv[-1]) if len(argv) > 2 else None
            touches = name is not None and name.startswith(LIBRARY_PREFIX.encode())
        elif sub == b"delete":
            touches = len(argv) > 2 and argv[2].startswith(LIBRARY_PREFIX.encode())
        else:
            touches = sub in (b"flush", b"restore")
        if not touches:
            return None
        return SecurityErrors.JSHOST_LIBRARY.format(name=_name(argv[:2]))


def library_name(code: bytes) -> bytes | None:
    """The library name FUNCTION LOAD would give `code`, read as Redis reads it
    (`functionExtractLibMetaData`: the first line, split by `sdssplitargs`, one `name=` part,
    any case, and nothing else); None when Redis would refuse the code anyway."""
    end = code.find(b"\n")
    if not code.startswith(b"#!") or end < 0:
        return None
    name = None
    for part in (split_args(code[:end]) or [b""])[1:]:
        if part[:5].lower() != b"name=" or name is not None:
            return None  # Redis: "Invalid metadata value" / "name ... given multiple times"
        name = part[5:]
    return name


def split_args(line: bytes) -> list[bytes] | None:
    """Redis' `sdssplitargs`: words split at spaces, with "double quotes" (and their \\xHH,
    \\n, ... escapes) and 'single quotes' anywhere in a word; None for unbalanced quotes."""
    line = line.split(b"\0", 1)[0]  # a C string
    words: list[bytes] = []
    i, size = 0, len(line)
    while True:
        while i < size and line[i] in _SPACE:
            i += 1
        if i >= size:
            return words
        word = bytearray()
        quote = 0
        while True:
            char = line[i] if i < size else 0
            if quote == ord('"'):
                if char == ord("\\") and i + 3 < size and line[i + 1] == ord("x") \
                        and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    word.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif char == ord("\\") and i + 1 < size:
                    i += 1
                    word.append(_ESCAPES.get(line[i], line[i]))
                elif char == ord('"'):
                    if i + 1 < size and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                elif not char:
                    return None
                else:
                    word.append(char)
            elif quote == ord("'"):
                if char == ord("\\") and i + 1 < size and line[i + 1] == ord("'"):
                    i += 1
                    word.append(ord("'"))
                elif char == ord("'"):
                    if i + 1 < size and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                elif not char:
                    return None
                else:
                    word.append(char)
            elif char in b" \n\r\t" or not char:
                break
            elif char in (ord('"'), ord("'")):
                quote = char
            else:
                word.append(char)
            i += 1
        words.append(bytes(word))


def _name(words: list[bytes]) -> str:
    return " ".join(_text(word).lower() for word in words)


def _text(word: bytes) -> str:
    return word.decode("utf-8", "replace")
