"""A client's session on the embedded store: a fakeredis connection of its own (`StoreSocket`)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from jshost.errors import ReplicaErrors, StoreErrors
from jshost.replies import NO_REPLY, ErrorReply, Push, Reply, StoreReply
from jshost.store.base import PushHandler, Session
from jshost.store.command_table import unknown_command_error
from jshost.store.embedded.database import TIMED_OUT, TimedOut, Waiter
from jshost.store.embedded.debug_protocol import debug_protocol
from jshost.store.embedded.reply_fixes import ERROR_FIXES, fix_exec, fix_reply
from jshost.store.embedded.socket import StoreSocket

if TYPE_CHECKING:
    from jshost.store.embedded.store import EmbeddedStore


class EmbeddedSession(Session):
    """A client connection to the embedded server."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.on_push: PushHandler | None = None
        self.pushes: deque[Push] = deque()
        self._sock = StoreSocket(store, self)
        self._waiter: Waiter | None = None
        self._closed = False
        self._on_close: list[Callable[[], None]] = []
        store.sessions.add(self)
        store.by_id[self.client_id] = self

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

    def call(self, args: Sequence[bytes]) -> StoreReply:
        reply, _ = self.run(args)
        self.store.blocked.serve_later()  # blocked clients are served after the atomic section
        return reply

    async def execute(self, args: Sequence[bytes]) -> StoreReply:
        reply, timeout = self.run(args)
        self.store.blocked.serve()
        if timeout is None:
            return reply
        return await self._park(list(args), reply, timeout)

    def unblock(self, error: bool) -> bool:
        if self._waiter is None or self._waiter.future.done():
            return False
        self._sock._unblock_reason = b"error" if error else b"timeout"  # (see `unblocked_reply`)
        self.store.serve_blocked()
        return True

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call `callback` once `close()` has closed the session (at once if it has)."""
        if self._closed:
            callback()
        else:
            self._on_close.append(callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._waiter is not None:
            self._waiter.future.cancel()
        self.store.tracking.disable(self.client_id)
        self._sock.close()
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()

    # -- within the embedded store ---------------------------------------------------------------

    def run(self, args: Sequence[bytes]) -> tuple[StoreReply, float | None]:
        """Run `args` and give its RESP3-typed reply, and its timeout if it would have blocked."""
        args = args if type(args) is list else list(args)
        if not args:
            return NO_REPLY, None
        if self._closed:
            return ErrorReply(StoreErrors.SESSION_CLOSED), None
        if len(args) > 1 and args[0].lower() == b"debug" and args[1].lower() == b"protocol":
            return debug_protocol(args), None  # (unknown to fakeredis)
        sock = self._sock
        if self.store.replica_of is not None and not sock.in_multi and self._writes(args):
            return ErrorReply(ReplicaErrors.READONLY), None  # replica-read-only, for everyone
        queued = sock.queued_commands() if sock.in_multi and args[0].lower() == b"exec" else None
        reply, timeout = sock.run(args)
        if type(reply) is ErrorReply:
            reply = self._fix_error(args, reply)
        elif queued is not None:
            reply = fix_exec(queued, reply)
        elif not sock.in_multi:  # (in MULTI the reply is QUEUED)
            reply = fix_reply(args, reply)
        return reply, timeout

    def _writes(self, args: list[bytes]) -> bool:
        info = self.store.command_info().lookup(args)
        return info is not None and "write" in info.flags

    def unblocked_reply(self) -> Reply | TimedOut | None:
        """The reply for a CLIENT UNBLOCK aimed at this session, or None if there was none."""
        reason, self._sock._unblock_reason = self._sock._unblock_reason, None
        if reason is None:
            return None
        if reason == b"error":
            return ErrorReply(StoreErrors.UNBLOCKED)
        return TIMED_OUT  # TIMEOUT: answer as the timeout would

    def _fix_error(self, args: list[bytes], reply: ErrorReply) -> ErrorReply:
        """Redis' wording for the errors fakeredis words its own way."""
        if reply.startswith(StoreErrors.UNKNOWN_COMMAND_FAKEREDIS):
            # Unknown to fakeredis: Redis' unknown command/subcommand text, or its arity error
            # for a container called alone (`CONFIG`).
            table = self.store.command_info()
            return ErrorReply(table.check_command(args) or unknown_command_error(args))
        if reply.startswith(StoreErrors.ARITY_FAKEREDIS):
            return ErrorReply(self.store.command_info().arity_error(args))
        for pattern, replacement in ERROR_FIXES:
            fixed, count = pattern.subn(replacement, reply)
            if count:
                return ErrorReply(fixed)
        return reply

    async def _park(self, args: list[bytes], empty: StoreReply, timeout: float) -> StoreReply:
        """Wait until a write to one of the command's keys lets it through, or its timeout."""
        store = self.store
        blocked = store.blocked
        loop = asyncio.get_running_loop()
        waiter = Waiter(
            session=self,
            args=blocked.retry_args(self, args),
            db=self._sock.db_object,
            keys=tuple(dict.fromkeys(store.command_info().keys_of(args))),
            future=loop.create_future(),
        )
        blocked.park(waiter, loop)
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
            blocked.unpark(waiter)
        return empty if isinstance(reply, TimedOut) else reply
