"""A client's session on the remote store: a shared connection until it needs one of its own."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from jshost.errors import BackendErrors
from jshost.replies import NO_REPLY, OK, ErrorReply, Push, StoreReply
from jshost.resp import encode
from jshost.store.base import PushHandler, Session
from jshost.store.remote.async_connection import AsyncConnection
from jshost.store.remote.sync_connection import STATEFUL, UNSUPPORTED

if TYPE_CHECKING:
    from jshost.store.remote.store import RemoteStore

LOG = logging.getLogger("jshost.store.remote")


class RemoteSession(Session):
    """A client's view of the backend: a shared connection until it needs one of its own."""

    def __init__(self, store: RemoteStore, shared_index: int) -> None:
        self.store = store
        self.on_push: PushHandler | None = None
        self.pushes: deque[Push] = deque()
        self._db = store.db
        self._shared_index = shared_index
        self._conn: AsyncConnection | None = None  # dedicated, once it has one
        self._last_shared: asyncio.Future[Any] | None = None
        self._closed = False
        self._on_close: list[Callable[[], None]] = []
        self._pipelinable: Sequence[bytes] | None = None  # the command last found pipelinable

    @property
    def db(self) -> int:
        return self._db

    @property
    def closed(self) -> bool:
        """True after `close()`, after `aclose()` of the store, and once the session's own
        backend connection was dropped (CLIENT KILL, a backend restart): the host should then
        drop the client's connection."""
        return self._closed or self.store.closed

    @property
    def dedicated(self) -> bool:
        """Whether the session has (had) a connection of its own."""
        return self._conn is not None

    def call(self, args: Sequence[bytes]) -> StoreReply:
        if self.closed:
            return ErrorReply(BackendErrors.ERR_STORE_CLOSED)
        return self.store.sync.call(self, args)

    async def execute(self, args: Sequence[bytes]) -> StoreReply:
        result = self._submit(args, raw=False)
        reply = await result if isinstance(result, asyncio.Future) else result
        if self.store.subscriber is not None:
            await self.store.after_command(args)
        return reply

    async def execute_raw(self, args: Sequence[bytes]) -> bytes:
        """Like `execute`, but the exact RESP3 bytes of the reply as Redis sent them (b"" when
        the command has no reply), to forward to a RESP3 client unchanged. RESP2 clients must
        get `execute`'s typed reply re-encoded instead."""
        result = self._submit(args, raw=True)
        if isinstance(result, asyncio.Future):
            raw: bytes = await result
        else:
            raw = b"" if result is NO_REPLY else encode(result, 3)
        if self.store.subscriber is not None:
            await self.store.after_command(args)
        return raw

    def _shared_suits(self, name: bytes, args: Sequence[bytes]) -> bool:
        """Whether the shared connection can run `args` for this session: a stateless,
        non-blocking command on the store's database."""
        return not (name in STATEFUL or self._db != self.store.db
                    or self.store.is_blocking(args))

    def pipelinable(self, args: Sequence[bytes]) -> bool:
        """Whether `args` may be sent at once behind this session's commands still in flight,
        its reply taken in turn (`submit`): a stateless, non-blocking command for the
        shared connection whose keyspace events no trigger waits for (no fence)."""
        if args is self._pipelinable:
            return True  # just asked (the server asks before it runs the command)
        if self._conn is not None or self.closed or not args:
            return False
        name = args[0].lower()
        if name in UNSUPPORTED or name == b"quit" or not self._shared_suits(name, args):
            return False
        store = self.store
        events = store.subscriber
        if events is None or events.closed:
            return True
        listener = store.listener
        if listener is None:
            return True
        try:
            if listener.wants_command(args):
                return False
        except Exception:  # a bad filter: take the careful path, which logs it
            return False
        self._pipelinable = args
        return True

    def submit(self, args: Sequence[bytes], raw: bool) -> asyncio.Future[Any] | None:
        """Write a `pipelinable` command now and return the future of its reply (its bytes when
        `raw`), or None when it is not pipelinable (then use `execute` / `execute_raw`)."""
        if not self.pipelinable(args):
            return None
        self._pipelinable = None
        future = self.store.shared_connection(self._shared_index).submit(args, raw)
        self._last_shared = future
        return future

    def unblock(self, error: bool) -> bool | asyncio.Future[bool]:
        """CLIENT UNBLOCK of the backend connection this session's blocking command waits on
        (sent on a shared connection: this one is busy), once that connection is open."""
        conn = self._conn
        if conn is None or self.closed:
            return False
        return asyncio.ensure_future(self._unblock(conn, error))

    async def _unblock(self, conn: AsyncConnection, error: bool) -> bool:
        await asyncio.wait([conn.opening])
        if conn.backend_id is None or conn.closed:
            return False
        args = [b"CLIENT", b"UNBLOCK", b"%d" % conn.backend_id, *([b"ERROR"] if error else [])]
        reply = await self.store.shared_connection(self._shared_index).submit(args, raw=False)
        return bool(reply == 1)

    def close(self) -> None:
        if self._closed:
            return
        self._mark_closed()
        if self._conn is not None:
            self._conn.fail(BackendErrors.ERR_STORE_CLOSED)

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the session is closed (by `close()`, or because its own backend
        connection was lost); at once if it is closed already."""
        if self._closed:
            callback()
        else:
            self._on_close.append(callback)

    def lost(self) -> None:
        """Its own backend connection was dropped: the session is closed."""
        self._mark_closed()

    def selected(self, db: int) -> None:
        """Its connection is on database `db` now (SELECT, RESET, EXEC)."""
        self._db = db

    def _mark_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one bad callback must not stop the others
                LOG.exception("session close callback failed")

    def _submit(self, args: Sequence[bytes], raw: bool) -> asyncio.Future[Any] | StoreReply:
        """Write the command (now, so that a session's commands keep their order) and return the
        future of its reply, or the reply itself when it is known at once."""
        if self.closed:
            return ErrorReply(BackendErrors.ERR_STORE_CLOSED)
        if not args:
            return NO_REPLY
        name = args[0].lower()
        if name == b"quit":
            return OK  # never let it close a backend connection
        if name in UNSUPPORTED:
            text = name.decode("utf-8", "replace")
            return ErrorReply(BackendErrors.ERR_UNSUPPORTED.format(name=text))
        store = self.store
        conn = self._conn
        if conn is None and self._shared_suits(name, args):
            future = store.shared_connection(self._shared_index).submit(args, raw)
            self._last_shared = future
            return future
        if conn is None or conn.closed:  # (closed: it could not connect; try again)
            conn = self._conn = self._open_dedicated()
        return conn.submit_tracked(args, raw)

    def _open_dedicated(self) -> AsyncConnection:
        gate = self._last_shared
        self._last_shared = None
        if gate is not None and gate.done():
            gate = None
        return AsyncConnection(self.store, self._db, None, session=self, gate=gate)
