"""Command routing: the checks Redis makes before any command runs, then the command's family.

`Dispatcher.dispatch(client, argv)` is called by the connection for every command, in order, and
returns what the command gave (a `jshost.replies.Result`: a reply now, a future of one, ...).
The checks follow Redis 7.2 `processCommand`:

1. the command exists and its arity fits (`COMMAND` metadata of the store, which also lists
   jshost's own commands with arity -1, as module commands have) — else Redis's error;
2. the client is authenticated, or the command has the `no_auth` flag (AUTH, HELLO, QUIT,
   RESET) — else `NOAUTH Authentication required.`;
3. inside MULTI, a `no_multi` command (SHUTDOWN, SAVE, ...) is refused;
4. a RESP2 client in pub/sub mode may only run the (P|S)(UN)SUBSCRIBE family, PING, QUIT and
   RESET;
4b. jshost's own refusals (`guard.Guard`: writes to `jshost:` keys, administrative commands
   sent to a backend Redis, ...; docs/security.md), in the place of Redis' ACL check;
5. inside MULTI every command but EXEC, DISCARD, MULTI, WATCH, QUIT and RESET is queued
   (``+QUEUED``). A refusal in steps 1-4 while queueing makes EXEC answer EXECABORT.

Then the handler of the command's family runs — `connection_cmds` (HELLO, AUTH, PING, ...),
`transactions` (MULTI, EXEC, ...), `gears` (RG.*, TFUNCTION, TFCALL*, CONFIG) — or, for every
other command, `store_cmds.Forwarder` sends it to the client's store session. `run` does the
same for a command EXEC takes from the queue.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from jshost.commands import (
    connection_cmds,
    gears,
    info_cmd,
    persistence_cmds,
    store_cmds,
    transactions,
)
from jshost.commands.guard import Guard
from jshost.errors import ReplyError, ServerErrors
from jshost.fastpath import FastPath, enabled_by_environment
from jshost.listener_config import ListenerConfig
from jshost.replies import ErrorReply, RawReply, Result
from jshost.resp import QUEUED_REPLY
from jshost.store import Session, Store
from jshost.store.command_table import CommandTable

if TYPE_CHECKING:
    from jshost.connection import ClientState
    from jshost.host import Host
    from jshost.host.persistence import Persistence

log = logging.getLogger("jshost.server")

Handler = Callable[["ClientState", list[bytes]], Result]

QUEUED: Final = RawReply(QUEUED_REPLY)

#: Commands run at once even inside MULTI (Redis's processCommand list).
_MULTI_CONTROL: Final = frozenset({b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"})
#: The only commands a RESP2 client in pub/sub mode may send.
_PUBSUB_ALLOWED: Final = frozenset(
    {
        b"ping",
        b"subscribe",
        b"ssubscribe",
        b"unsubscribe",
        b"sunsubscribe",
        b"psubscribe",
        b"punsubscribe",
        b"quit",
        b"reset",
    }
)


@dataclass(eq=False)
class ServerContext:
    """What every connection of one server shares."""

    host: Host
    requirepass: str | None = None
    #: The Redis version HELLO reports (clients pick features by it).
    redis_version: str = "7.2.4"
    #: Asks the server to shut down (SHUTDOWN); set by `jshost.server.Server`.
    request_shutdown: Callable[[], None] = lambda: None
    dispatcher: Dispatcher | None = None
    #: What the server keeps across restarts (`SAVE` writes the embedded store's data with it).
    persistence: Persistence | None = None
    #: The listener's settings (CONFIG GET/SET answers them itself on every store).
    listener: ListenerConfig = field(default_factory=lambda: ListenerConfig())
    #: INFO's `# Clients` fields, from the server's own connections; set by the server.
    clients_info: Callable[[], list[tuple[str, int]]] = lambda: []
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def store(self) -> Store:
        return self.host.store

    @property
    def table(self) -> CommandTable:
        """The command metadata (the host's copy of the store's `COMMAND` table)."""
        return self.host.commands

    @property
    def store_in_process(self) -> bool:
        """Whether store commands can run synchronously on the loop (the embedded store); a
        remote store is always awaited."""
        return self.store.in_process

    def client_id(self, session: Session) -> int:
        """The id HELLO and CLIENT ID report: the store session's own when it has one, so that
        CLIENT KILL ID / CLIENT UNBLOCK sent to the store name the same client."""
        own = session.client_id
        return own if own is not None else next(self._ids)


class Dispatcher:
    """Runs the pre-checks of `processCommand`, queues in MULTI, and calls the handlers."""

    def __init__(self, ctx: ServerContext, handlers: Mapping[bytes, Handler] | None = None) -> None:
        self.ctx = ctx
        self.table = ctx.table
        self.handlers: dict[bytes, Handler] = dict(handlers or default_handlers())
        self._forward = store_cmds.Forwarder(ctx)
        self._guard = Guard(ctx)
        # Top-level commands by lower-case name (jshost's own included), for `dispatch`.
        self._commands = {c.name.encode(): c for c in self.table.commands(host_commands=True)}
        # The native call path (None: off, `JSHOST_NATIVE_CALLS=0`); the connection hands it
        # the head of its query buffer (`jshost.fastpath`).
        self.fast_path = FastPath(ctx.host, self._commands) if enabled_by_environment() else None
        ctx.dispatcher = self

    def dispatch(self, client: ClientState, argv: list[bytes]) -> Result:
        """Check, then queue (inside MULTI) or run one command from `client`."""
        # The hot path of the server: one lookup per word, no call that can be avoided.
        name = argv[0].lower()
        info = self._commands.get(name)
        if info is not None and info.subcommands and len(argv) > 1:
            info = info.subcommands.get(argv[1].lower())
        if info is None or not info.arity_ok(len(argv)):
            return self._reject(client, self.table.check_command(argv) or "")
        if not client.authenticated and "no_auth" not in info.flags:
            return self._reject(client, ServerErrors.NOAUTH)
        multi = client.multi
        queue = multi is not None and name not in _MULTI_CONTROL
        if queue and "no_multi" in info.flags:
            return self._reject(client, ServerErrors.NOT_ALLOWED_IN_MULTI)
        if client.subscribed and client.protocol == 2 and name not in _PUBSUB_ALLOWED:
            return self._reject(client, ServerErrors.pubsub_context(info.name))
        refused = self._guard.check(argv)
        if refused is not None:
            return self._reject(client, refused)
        if queue:
            multi.append(argv)  # type: ignore[union-attr]
            return QUEUED
        client.last_command = info
        handler = self.handlers.get(name)
        try:
            if handler is not None:
                return handler(client, argv)
            return self._forward(client, argv)
        except ReplyError as exc:
            return ErrorReply(exc.text)
        except Exception as exc:  # noqa: BLE001 - a bug costs one reply, not the server
            return _internal_error(argv, exc)

    def can_pipeline(self, client: ClientState, argv: list[bytes]) -> bool:
        """Whether `argv` may run while `client`'s pipelined replies are still due (see
        `jshost.connection`): a command for the store, outside MULTI and pub/sub, that the store
        can pipeline. Anything jshost answers itself waits for the replies before it."""
        return (
            client.multi is None
            and client.authenticated
            and not client.subscribed
            and argv[0].lower() not in self.handlers
            and self._forward.can_pipeline(client, argv)
        )

    def run(self, client: ClientState, argv: list[bytes], name: bytes | None = None) -> Result:
        """Run a checked command (also used by EXEC for each queued one). A `ReplyError` becomes
        the error reply; any other exception is logged and answered with an internal error."""
        handler = self.handlers.get(name if name is not None else argv[0].lower())
        try:
            if handler is not None:
                return handler(client, argv)
            return self._forward(client, argv)
        except ReplyError as exc:
            return ErrorReply(exc.text)
        except Exception as exc:  # noqa: BLE001 - a bug costs one reply, not the server
            return _internal_error(argv, exc)

    def forward(self, client: ClientState, argv: list[bytes]) -> Result:
        """Send `argv` to the client's store session (see `store_cmds.Forwarder`)."""
        return self._forward(client, argv)

    def forward_typed(self, client: ClientState, argv: list[bytes]) -> Result:
        """Like `forward`, but always a typed reply or a future of one (never a remote store's
        raw bytes or a pipelined reply): for replies jshost edits before sending them on."""
        if self.ctx.store_in_process:
            return self._forward(client, argv)
        return asyncio.ensure_future(client.session.execute(argv))

    def _reject(self, client: ClientState, text: str) -> ErrorReply:
        """Redis's rejectCommand: the error, and inside MULTI the transaction is doomed."""
        if client.multi is not None:
            client.multi_dirty = True
        return ErrorReply(text)


def _internal_error(argv: list[bytes], exc: Exception) -> ErrorReply:
    """A bug costs one reply, not the connection or the server."""
    log.error("command %r failed", argv[0][:64], exc_info=exc)
    return ErrorReply(ServerErrors.INTERNAL_ERROR.format(type(exc).__name__))


def default_handlers() -> dict[bytes, Handler]:
    """Every command jshost answers itself, by lower-case name."""
    handlers: dict[bytes, Handler] = {}
    for family in (connection_cmds, transactions, gears, persistence_cmds, info_cmd):
        overlap = handlers.keys() & family.HANDLERS.keys()
        if overlap:
            raise RuntimeError(f"commands claimed twice: {sorted(overlap)}")
        handlers.update(family.HANDLERS)
    return handlers
