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
4c. where jshost is the whole server (the embedded store; a backend checks for itself): a
   `denyoom` command while over `maxmemory` (`OOM command not allowed ...`), then a `write`
   command on a replica (`READONLY ...`), read from the host's gates;
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
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from jshost.commands import (
    connection_cmds,
    gears,
    info_cmd,
    internal_cmds,
    persistence_cmds,
    reload_cmds,
    server_state,
    store_cmds,
    transactions,
)
from jshost.commands.client_cmd import (
    MUTED,
    REPLY_SKIP,
    REPLY_SKIP_NEXT,
    active_pause,
    wait_for_pause,
)
from jshost.commands.guard import Guard
from jshost.commands.stats import ServerStats
from jshost.errors import REDIS_OOM, ReplicaErrors, ReplyError, ServerErrors
from jshost.fastpath import FastPath, enabled_by_environment
from jshost.listener_config import ListenerConfig
from jshost.replies import NO_REPLY, ErrorReply, Pipelined, Push, RawReply, Result
from jshost.resp import QUEUED_REPLY
from jshost.store import Store
from jshost.store.command_table import CommandTable

if TYPE_CHECKING:
    from jshost.client_state import ClientState
    from jshost.commands.client_cmd import ClientConnection, Pause
    from jshost.host import Host
    from jshost.host.persistence import Persistence

log = logging.getLogger("jshost.server")

Handler = Callable[["ClientState", list[bytes]], Result]

QUEUED: Final = RawReply(QUEUED_REPLY)

#: Commands run at once even inside MULTI (Redis's processCommand list).
_MULTI_CONTROL: Final = frozenset({b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"})
#: The command flags of step 4c.
_WRITE_FLAGS: Final = frozenset({"write", "denyoom"})
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
    #: The connected clients by id (each admitted connection adds itself): CLIENT LIST, KILL,
    #: INFO's `# Clients`, ...
    clients: dict[int, ClientConnection] = field(default_factory=dict)
    #: A CLIENT PAUSE in force (`client_cmd.active_pause`), or None.
    pause: Pause | None = None
    #: Commands run (or queued) since the start or CONFIG RESETSTAT (INFO's
    #: total_commands_processed).
    commands_processed: int = 0
    #: INFO's other counters (`jshost.commands.stats`), and the facts of `# Server`.
    stats: ServerStats = field(default_factory=ServerStats)
    started: float = field(default_factory=time.time)
    run_id: str = field(default_factory=lambda: secrets.token_hex(20))
    executable: str = field(default_factory=lambda: _executable())
    config_file: str = ""
    #: Answers every blocked client with a text and closes it (the change to replica).
    unblock_clients: Callable[[str], None] = lambda _text: None
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

    def new_client_id(self) -> int:
        """The id of a new client (HELLO, CLIENT ID): jshost numbers its clients itself, since
        it answers CLIENT for them (the store's own connections are not theirs)."""
        return next(self._ids)

    def connections(self) -> Iterable[ClientConnection]:
        """The connected clients' connections."""
        return self.clients.values()

    def push_to(self, client: ClientState) -> Callable[[Push], None] | None:
        """How to send a push to another client (a tracking redirect target)."""
        conn = self.clients.get(client.id)
        return None if conn is None else conn.deliver


class Dispatcher:
    """Runs the pre-checks of `processCommand`, queues in MULTI, and calls the handlers."""

    def __init__(self, ctx: ServerContext, handlers: Mapping[bytes, Handler] | None = None) -> None:
        self.ctx = ctx
        self.table = ctx.table
        self.handlers: dict[bytes, Handler] = dict(handlers or default_handlers())
        self._forward = store_cmds.Forwarder(ctx)
        self._guard = Guard(ctx)
        self._gates = ctx.host.gates
        self._gates.avoiding_replication = lambda: active_pause(ctx) is not None
        self._own_checks = not ctx.store.checks_commands  # step 4c
        # Out of script mode (DEBUG allow_unsafe_redis_commands), JS commands pass these too.
        ctx.host.js_commands.guard = self._guard.check
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
        if self._own_checks and not _WRITE_FLAGS.isdisjoint(info.flags):
            refused = self._write_refusal(info.flags)
            if refused is not None:
                return self._reject(client, refused)
        if self.ctx.pause is not None:  # CLIENT PAUSE: the command waits for its end
            pause = active_pause(self.ctx)
            if pause is not None and pause.holds(name, info.flags):
                return asyncio.ensure_future(self._after_pause(pause, client, argv))
        self.ctx.commands_processed += 1
        if queue:
            multi.append(argv)  # type: ignore[union-attr]
            return self._replied(client, QUEUED) if client.reply_flags else QUEUED
        client.last_command = info
        handler = self.handlers.get(name)
        try:
            if handler is not None:
                result = handler(client, argv)
            else:
                result = self._forward(client, argv)
        except ReplyError as exc:
            result = ErrorReply(exc.text)
        except Exception as exc:  # noqa: BLE001 - a bug costs one reply, not the server
            result = _internal_error(argv, exc)
        return self._replied(client, result) if client.reply_flags else result

    async def _after_pause(self, pause: Pause, client: ClientState, argv: list[bytes]) -> Any:
        """A command held by CLIENT PAUSE: run it once the pause is over."""
        await wait_for_pause(self.ctx, pause)
        result = self.dispatch(client, argv)
        if type(result) is Pipelined:
            await asyncio.wait([result.future])
            return result.reply()
        if isinstance(result, asyncio.Future):
            return await result
        return result

    @staticmethod
    def _replied(client: ClientState, result: Result) -> Result:
        """CLIENT REPLY OFF / SKIP: the command has run, its reply is dropped."""
        flags = client.reply_flags
        muted = flags & MUTED
        # SKIP mutes one reply: this one (given before), and arms it for the next one.
        flags &= ~REPLY_SKIP
        if flags & REPLY_SKIP_NEXT:
            flags = (flags & ~REPLY_SKIP_NEXT) | REPLY_SKIP
        client.reply_flags = flags
        if not muted or result is NO_REPLY:
            return result
        if type(result) is Pipelined:
            return Pipelined(result.future, lambda _reply: NO_REPLY)
        if isinstance(result, asyncio.Future):
            return asyncio.ensure_future(_dropped(result))
        return NO_REPLY

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

    def _write_refusal(self, flags: frozenset[str]) -> str | None:
        """Step 4c: Redis' OOM check, then its replica-read-only check."""
        if "denyoom" in flags and self._gates.oom:
            return REDIS_OOM
        if "write" in flags and self._gates.replica:
            return ReplicaErrors.READONLY
        return None

    def _reject(self, client: ClientState, text: str) -> ErrorReply:
        """Redis's rejectCommand: the error, and inside MULTI the transaction is doomed."""
        if client.multi is not None:
            client.multi_dirty = True
        return ErrorReply(text)


def _executable() -> str:
    """INFO's executable: the program that runs jshost (its script, else Python)."""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return script if os.path.isfile(script) else sys.executable


async def _dropped(result: asyncio.Future[Any]) -> Any:
    await asyncio.wait([result])
    return NO_REPLY


def _internal_error(argv: list[bytes], exc: Exception) -> ErrorReply:
    """A bug costs one reply, not the connection or the server."""
    log.error("command %r failed", argv[0][:64], exc_info=exc)
    return ErrorReply(ServerErrors.INTERNAL_ERROR.format(type(exc).__name__))


def default_handlers() -> dict[bytes, Handler]:
    """Every command jshost answers itself, by lower-case name."""
    handlers: dict[bytes, Handler] = {}
    for family in (connection_cmds, transactions, gears, persistence_cmds, info_cmd,
                   server_state, reload_cmds, internal_cmds):
        overlap = handlers.keys() & family.HANDLERS.keys()
        if overlap:
            raise RuntimeError(f"commands claimed twice: {sorted(overlap)}")
        handlers.update(family.HANDLERS)
    return handlers
