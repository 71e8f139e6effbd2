"""``CLIENT``: jshost answers it for its own clients, as Redis 7.2 does, on every store.

The clients of a jshost are jshost's connections, not the store's: on `--backend` the backend
sees jshost's few connections, on the embedded store fakeredis sees sessions. So ``CLIENT LIST``,
``KILL``, ``PAUSE``, ``REPLY``, ``NO-EVICT``, ``SETINFO``, ``GETREDIR`` … are answered here from
the connections the server holds (`ServerContext.connections`). Three sub-commands also need the
store, and go to the client's session after jshost's part:

* ``NO-TOUCH`` (the store keeps the keys' access times);
* ``TRACKING`` / ``CACHING`` / ``TRACKINGINFO``: the store tracks the keys this client reads
  and sends the invalidations to the client's session; ``REDIRECT`` is jshost's (it never
  reaches the store): the connection routes each invalidation to the redirect target, as a
  push (RESP3) or a ``__redis__:invalidate`` message (RESP2 in pub/sub);
* ``UNBLOCK``: the store ends the command the client's session waits in (`Session.unblock`;
  on a backend, a ``CLIENT UNBLOCK`` of the session's own backend connection).

jshost numbers its clients itself (`ServerContext.new_client_id`): the store's connections are
not its clients.

Errors are Redis 7.2's texts. Not here: ``CLIENT ID`` / ``GETNAME`` / ``SETNAME`` / ``INFO``
stay with the connection commands (`connection_cmds`), which they share state with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from jshost.errors import ClientErrors, ReplyError
from jshost.replies import NO_REPLY, OK, CloseAfter, Push, Verbatim

if TYPE_CHECKING:
    from jshost.client_state import ClientState
    from jshost.commands.dispatch import Handler, ServerContext

#: CLIENT KILL / LIST TYPE names (replica and slave are the same; jshost has neither).
CLIENT_TYPES: Final = frozenset((b"normal", b"master", b"replica", b"slave", b"pubsub"))
#: Commands a CLIENT PAUSE WRITE holds besides those flagged `write`: Redis' may-replicate
#: ones, and jshost's function calls and library loads (JS may write).
MAY_WRITE: Final = frozenset((
    b"eval", b"evalsha", b"fcall", b"publish", b"spublish", b"pfcount", b"script",
    b"function", b"rg.fcall", b"rg.fcallasync", b"rg.function", b"tfcall", b"tfcallasync",
    b"tfunction",
))
INVALIDATION_CHANNEL: Final = b"__redis__:invalidate"
#: The push kind of a tracking invalidation (RESP3).
INVALIDATE: Final = b"invalidate"
#: `ClientState.reply_flags` (CLIENT REPLY): OFF, SKIP this reply, SKIP the next one.
REPLY_OFF: Final = 1
REPLY_SKIP: Final = 2
REPLY_SKIP_NEXT: Final = 4
MUTED: Final = REPLY_OFF | REPLY_SKIP


class ClientConnection(Protocol):
    """What CLIENT needs of a connection (jshost.connection.Connection)."""

    client: ClientState | None

    @property
    def blocked(self) -> bool: ...

    @property
    def idle_seconds(self) -> float: ...

    def output_size(self) -> int: ...

    def kill(self) -> None: ...

    def deliver(self, push: Push) -> None: ...


# --- CLIENT PAUSE -----------------------------------------------------------------------------


@dataclass
class Pause:
    """A CLIENT PAUSE in force: until `deadline` (loop time), every command (`all`) or those
    that may write (`write`) wait; `released` is done when it ends (UNPAUSE or the time)."""

    deadline: float
    write_only: bool
    released: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def holds(self, name: bytes, flags: frozenset[str]) -> bool:
        return not self.write_only or "write" in flags or name in MAY_WRITE


def active_pause(ctx: ServerContext) -> Pause | None:
    """The pause in force, if any (an expired one is ended here)."""
    pause = ctx.pause
    if pause is None:
        return None
    if asyncio.get_running_loop().time() >= pause.deadline:
        end_pause(ctx)
        return None
    return pause


def end_pause(ctx: ServerContext) -> None:
    pause, ctx.pause = ctx.pause, None
    if pause is not None and not pause.released.done():
        pause.released.set_result(None)


async def wait_for_pause(ctx: ServerContext, pause: Pause) -> None:
    """Until the pause ends: UNPAUSE, or its deadline (which a later PAUSE may move)."""
    loop = asyncio.get_running_loop()
    while not pause.released.done():
        delay = pause.deadline - loop.time()
        if delay <= 0:
            if ctx.pause is pause:
                end_pause(ctx)
            return
        try:
            await asyncio.wait_for(asyncio.shield(pause.released), delay)
        except TimeoutError:
            continue


# --- the sub-commands -------------------------------------------------------------------------


def client_list(client: ClientState, argv: list[bytes]) -> Any:
    """``CLIENT LIST [TYPE type | ID id [id ...]]``."""
    wanted_type: bytes | None = None
    wanted_ids: set[int] | None = None
    if len(argv) == 4 and argv[2].lower() == b"type":
        wanted_type = _client_type_arg(argv[3])
    elif len(argv) >= 4 and argv[2].lower() == b"id":
        wanted_ids = set()
        for word in argv[3:]:
            number = _integer(word)
            if number is None or number <= 0:
                raise ReplyError(ClientErrors.INVALID_ID)
            wanted_ids.add(number)
    elif len(argv) != 2:
        raise ReplyError(ClientErrors.SYNTAX)
    lines = []
    for conn in _connections(client.ctx):
        other = conn.client
        if other is None:
            continue
        if wanted_type is not None and client_type(other) != wanted_type:
            continue
        if wanted_ids is not None and other.id not in wanted_ids:
            continue
        lines.append(client_line(other, conn))
    return Verbatim(b"".join(lines), "txt")


def client_kill(client: ClientState, argv: list[bytes]) -> Any:
    """``CLIENT KILL ip:port`` (old form: +OK, may kill the caller) or ``CLIENT KILL <filter>
    <value> ...`` (ID, ADDR, LADDR, TYPE, USER, SKIPME; the number killed)."""
    if len(argv) == 3:
        victims = [c for c in _connections(client.ctx)
                   if c.client is not None and c.client.peer.encode() == argv[2]]
        if not victims:
            raise ReplyError(ClientErrors.NO_SUCH_CLIENT)
        return CloseAfter(OK) if _kill(client, victims) else OK
    if len(argv) % 2:
        raise ReplyError(ClientErrors.SYNTAX)
    filters = KillFilters.parse(argv[2:])
    victims = [conn for conn in _connections(client.ctx)
               if conn.client is not None and filters.matches(conn.client, client)]
    killed = len(victims)
    return CloseAfter(killed) if _kill(client, victims) else killed


@dataclass
class KillFilters:
    """CLIENT KILL's filters (all must match)."""

    id: int | None = None
    addr: str | None = None
    laddr: str | None = None
    type: bytes | None = None
    skipme: bool = True

    @classmethod
    def parse(cls, words: list[bytes]) -> KillFilters:
        filters = cls()
        for name, value in zip(words[::2], words[1::2]):
            option = name.lower()
            if option == b"id":
                number = _integer(value)
                if number is None or number <= 0:
                    raise ReplyError(ClientErrors.KILL_ID)
                filters.id = number
            elif option == b"type":
                filters.type = _client_type_arg(value)
            elif option == b"addr":
                filters.addr = value.decode("utf-8", "replace")
            elif option == b"laddr":
                filters.laddr = value.decode("utf-8", "replace")
            elif option == b"user":
                if value != b"default":  # jshost's only user
                    raise ReplyError(ClientErrors.no_such_user(value))
            elif option == b"skipme":
                word = value.lower()
                if word not in (b"yes", b"no"):
                    raise ReplyError(ClientErrors.SYNTAX)
                filters.skipme = word == b"yes"
            else:
                raise ReplyError(ClientErrors.SYNTAX)
        return filters

    def matches(self, other: ClientState, me: ClientState) -> bool:
        if self.id is not None and other.id != self.id:
            return False
        if self.addr is not None and other.peer != self.addr:
            return False
        if self.laddr is not None and other.local != self.laddr:
            return False
        if self.type is not None and client_type(other) != self.type:
            return False
        return not (self.skipme and other is me)


def client_pause(client: ClientState, argv: list[bytes]) -> Any:
    """``CLIENT PAUSE timeout [WRITE|ALL]``: jshost's clients wait (not the store's)."""
    timeout = _integer(argv[2])
    if timeout is None:
        raise ReplyError(ClientErrors.PAUSE_TIMEOUT)
    if timeout < 0:
        raise ReplyError(ClientErrors.TIMEOUT_NEGATIVE)
    write_only = False
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in (b"write", b"all"):
            raise ReplyError(ClientErrors.PAUSE_MODE)
        write_only = mode == b"write"
    elif len(argv) > 4:
        raise ReplyError(ClientErrors.SYNTAX)
    ctx = client.ctx
    deadline = asyncio.get_running_loop().time() + timeout / 1000
    current = active_pause(ctx)
    if current is not None:
        # As Redis: the longer pause wins, and ALL wins over WRITE.
        current.deadline = max(current.deadline, deadline)
        current.write_only = current.write_only and write_only
    else:
        ctx.pause = Pause(deadline, write_only)
    return OK


def client_unpause(client: ClientState, argv: list[bytes]) -> Any:
    end_pause(client.ctx)
    return OK


def client_reply(client: ClientState, argv: list[bytes]) -> Any:
    """``CLIENT REPLY ON|OFF|SKIP`` (the dispatcher applies it to the replies that follow)."""
    mode = argv[2].lower()
    if mode == b"on":
        client.reply_flags = 0
        return OK
    if mode == b"off":
        client.reply_flags |= REPLY_OFF
        return NO_REPLY
    if mode == b"skip":
        if not client.reply_flags & REPLY_OFF:
            client.reply_flags |= REPLY_SKIP_NEXT
        return NO_REPLY
    raise ReplyError(ClientErrors.SYNTAX)


def client_no_evict(client: ClientState, argv: list[bytes]) -> Any:
    """``CLIENT NO-EVICT on|off``: noted (flag `e`); jshost evicts no clients anyway."""
    client.no_evict = _on_off(argv[2])
    return OK


def client_no_touch(client: ClientState, argv: list[bytes]) -> Any:
    """``CLIENT NO-TOUCH on|off``: the store keeps the access times, so it is told too."""
    on = _on_off(argv[2])
    reply = _forward(client, argv)
    if isinstance(reply, asyncio.Future):
        return asyncio.ensure_future(_noted(reply, client, "no_touch", on))
    if reply == OK:
        client.no_touch = on
    return reply


def client_setinfo(client: ClientState, argv: list[bytes]) -> Any:
    """``CLIENT SETINFO LIB-NAME|LIB-VER value`` (Redis 7.2: no spaces, newlines or special
    characters)."""
    attribute, value = argv[2].lower(), argv[3]
    if attribute not in (b"lib-name", b"lib-ver"):
        raise ReplyError(ClientErrors.setinfo_option(argv[2]))
    if any(byte < 0x21 or byte > 0x7E for byte in value):
        raise ReplyError(ClientErrors.setinfo_value(attribute))
    if attribute == b"lib-name":
        client.lib_name = value
    else:
        client.lib_ver = value
    return OK


def client_unblock(client: ClientState, argv: list[bytes]) -> Any:
    """``CLIENT UNBLOCK id [TIMEOUT|ERROR]``: 1 if that client was blocked and is now
    unblocked. The store unblocks the command the client's session waits in."""
    target_id = _integer(argv[2])
    if target_id is None:
        raise ReplyError(ClientErrors.NOT_AN_INTEGER)
    if len(argv) == 4 and argv[3].lower() not in (b"timeout", b"error"):
        raise ReplyError(ClientErrors.UNBLOCK_REASON)
    if len(argv) > 4:
        raise ReplyError(ClientErrors.SYNTAX)
    target = client.ctx.clients.get(target_id)
    if target is None or target.client is None or not target.blocked:
        return 0
    error = len(argv) == 4 and argv[3].lower() == b"error"
    done = target.client.session.unblock(error)
    if isinstance(done, asyncio.Future):
        return asyncio.ensure_future(_then(done, int))
    return int(done)


def client_tracking(client: ClientState, argv: list[bytes]) -> Any:
    """``CLIENT TRACKING on|off [REDIRECT id] ...``: REDIRECT is jshost's (see the module
    docstring); the rest goes to the store."""
    rest = [argv[0], argv[1]]
    redirect: int | None = None
    i = 2
    while i < len(argv):
        if argv[i].lower() == b"redirect" and i + 1 < len(argv):
            if redirect is not None:
                raise ReplyError(ClientErrors.REDIRECT_TWICE)
            redirect = _integer(argv[i + 1])
            if redirect is None:
                raise ReplyError(ClientErrors.NOT_AN_INTEGER)
            if redirect != client.id and not _client_by_id(client.ctx, redirect):
                raise ReplyError(ClientErrors.REDIRECT_MISSING)
            i += 2
            continue
        rest.append(argv[i])
        i += 1
    on = len(argv) > 2 and argv[2].lower() == b"on"
    reply = _forward(client, rest)

    def note(result: Any) -> Any:
        if result == OK:
            client.tracking = on
            client.tracking_redirect = (redirect or 0) if on else -1
        return result

    if isinstance(reply, asyncio.Future):
        return asyncio.ensure_future(_then(reply, note))
    return note(reply)


def client_getredir(client: ClientState, argv: list[bytes]) -> Any:
    return client.tracking_redirect if client.tracking else -1


def client_trackinginfo(client: ClientState, argv: list[bytes]) -> Any:
    """The store's answer, with jshost's redirect (and `broken_redirect` when it is gone)."""
    reply = _forward(client, argv)

    def patch(result: Any) -> Any:
        if isinstance(result, dict) and client.tracking:
            key = next((k for k in result if k == b"redirect"), b"redirect")
            result[key] = client.tracking_redirect
            if client.tracking_redirect > 0 and not _client_by_id(
                    client.ctx, client.tracking_redirect):
                flags = next((k for k in result if k == b"flags"), b"flags")
                result[flags] = type(result[flags])([*result[flags], b"broken_redirect"])
        return result

    if isinstance(reply, asyncio.Future):
        return asyncio.ensure_future(_then(reply, patch))
    return patch(reply)


def client_help(client: ClientState, argv: list[bytes]) -> Any:
    return [line.encode() for line in HELP]


HELP: Final = (
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Print this help.",
)


# --- routing invalidations (called by the connection for an `invalidate` push) ---------------


def route_invalidation(client: ClientState, push: list[Any]) -> tuple[ClientState, Any] | None:
    """Where an invalidation push of `client`'s tracking goes, and as what: the redirect
    target (or the client itself), as the push for RESP3, as a ``__redis__:invalidate``
    message for a RESP2 client in pub/sub; None when nobody can take it."""
    target = client
    if client.tracking_redirect > 0:
        found = _client_by_id(client.ctx, client.tracking_redirect)
        if found is None:
            return None
        target = found
    if target.protocol == 3:
        return target, push
    if target.subscribed:
        return target, [b"message", INVALIDATION_CHANNEL, push[1]]
    return None


# --- what a client looks like -----------------------------------------------------------------


def client_type(client: ClientState) -> bytes:
    return b"pubsub" if client.subscribed else b"normal"


def client_flags(client: ClientState, blocked: bool) -> str:
    """Redis' flag letters (getClientInfoString), those that can apply to a jshost client."""
    flags = ""
    if client.multi is not None:
        flags += "x"
    if blocked:
        flags += "b"
    if client.tracking:
        flags += "t"
        if client.tracking_redirect > 0 and not _client_by_id(client.ctx,
                                                              client.tracking_redirect):
            flags += "R"
    if client.subscribed:
        flags += "P"
    if client.close_after_reply:
        flags += "c"
    if client.no_evict:
        flags += "e"
    if client.no_touch:
        flags += "T"
    return flags or "N"


def client_line(client: ClientState, conn: ClientConnection | None) -> bytes:
    """One CLIENT LIST / CLIENT INFO line, with Redis 7.2's fields in Redis' order."""
    blocked = conn.blocked if conn is not None else False
    output = conn.output_size() if conn is not None else 0
    session_db = client.session_db
    fields = [
        ("id", client.id),
        ("addr", client.peer),
        ("laddr", client.local),
        ("fd", client.fd),
        ("name", _text(client.name or b"")),
        ("age", int(client.age)),
        ("idle", int(conn.idle_seconds) if conn is not None else 0),
        ("flags", client_flags(client, blocked)),
        ("db", session_db),
        ("sub", len(client.channels)),
        ("psub", len(client.patterns)),
        ("ssub", len(client.shard_channels)),
        ("multi", -1 if client.multi is None else len(client.multi)),
        ("qbuf", 0), ("qbuf-free", 0), ("argv-mem", 0), ("multi-mem", 0),
        ("rbs", 0), ("rbp", 0), ("obl", 0), ("oll", 0),
        ("omem", output), ("tot-mem", output),
        ("events", "rw" if output else "r"),
        ("cmd", client.last_command.name if client.last_command else "NULL"),
        ("user", "default"),
        ("redir", client.tracking_redirect if client.tracking else -1),
        ("resp", client.protocol),
        ("lib-name", _text(client.lib_name)),
        ("lib-ver", _text(client.lib_ver)),
    ]
    return (" ".join(f"{key}={value}" for key, value in fields) + "\n").encode()


# --- helpers ----------------------------------------------------------------------------------


def _connections(ctx: ServerContext) -> Iterable[ClientConnection]:
    return ctx.connections()


def _client_by_id(ctx: ServerContext, client_id: int) -> ClientState | None:
    conn = ctx.clients.get(client_id)
    return None if conn is None else conn.client


def _kill(me: ClientState, victims: list[ClientConnection]) -> bool:
    """Close the victims; whether the caller is one (it is closed after this reply, as Redis
    does for itself: the handler answers `CloseAfter`)."""
    for conn in victims:
        if conn.client is me:
            me.close_after_reply = True  # (CLIENT LIST's flag `c` meanwhile)
        else:
            conn.kill()
    return me.close_after_reply


def _client_type_arg(word: bytes) -> bytes:
    kind = word.lower()
    if kind not in CLIENT_TYPES:
        raise ReplyError(ClientErrors.unknown_type(word))
    return b"replica" if kind == b"slave" else kind


def _on_off(word: bytes) -> bool:
    mode = word.lower()
    if mode not in (b"on", b"off"):
        raise ReplyError(ClientErrors.SYNTAX)
    return mode == b"on"


def _integer(word: bytes) -> int | None:
    try:
        value = int(word)
    except ValueError:
        return None
    return value if str(value).encode() == word and -(2**63) <= value < 2**63 else None


def _forward(client: ClientState, argv: list[bytes]) -> Any:
    dispatcher = client.ctx.dispatcher
    assert dispatcher is not None
    return dispatcher.forward_typed(client, argv)


async def _noted(reply: asyncio.Future[Any], client: ClientState, attribute: str,
                 value: bool) -> Any:
    result = await reply
    if result == OK:
        setattr(client, attribute, value)
    return result


async def _then(reply: asyncio.Future[Any], then: Any) -> Any:
    return then(await reply)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


#: CLIENT's sub-commands jshost answers here (the others: connection_cmds).
SUBCOMMANDS: dict[bytes, Handler] = {
    b"list": client_list,
    b"kill": client_kill,
    b"pause": client_pause,
    b"unpause": client_unpause,
    b"reply": client_reply,
    b"no-evict": client_no_evict,
    b"no-touch": client_no_touch,
    b"setinfo": client_setinfo,
    b"unblock": client_unblock,
    b"tracking": client_tracking,
    b"getredir": client_getredir,
    b"trackinginfo": client_trackinginfo,
    b"caching": lambda client, argv: _forward(client, argv),
    b"help": client_help,
}
