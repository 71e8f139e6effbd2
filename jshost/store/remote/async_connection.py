"""The async connections to the backend: shared ones, and one per session that needs its own.

* **Shared connections** (`RemoteStore(shared_connections=N)`, default 1). `Session.execute` of a
  stateless command is written to the session's shared connection and pipelined with everyone
  else's: each connection keeps a FIFO of pending replies (`Pipeline`), and a session always uses
  the same shared connection, so its replies come back in the order it sent the commands.
* **Dedicated connections.** The first time a session sends a stateful or blocking command
  (SELECT, WATCH/MULTI/EXEC/DISCARD, BLPOP & co, XREAD ... BLOCK, WAIT, the SUBSCRIBE family,
  CLIENT, HELLO, AUTH, RESET), it gets a connection of its own, opened lazily, and keeps it from
  then on. The switch waits for the session's commands still in flight on the shared connection,
  so the backend runs them in order. Push messages (pub/sub) on it go to `session.on_push`
  (or `session.pushes` when that is None).

**Why they are not asyncio streams.** An atomic section must start only once every command
already sent has been answered, and it is entered synchronously by the host
(`store.begin_atomic()`), on the loop thread, where nothing can be awaited. So this module owns
every read: the connections are non-blocking sockets watched with `loop.add_reader` /
`loop.add_writer`. `drain()` (from `begin_atomic`) switches one to blocking mode, writes what is
buffered, reads until nothing but a blocking command is owed, and switches it back. Commands
submitted during the section are buffered and only written at `end_atomic`. An asyncio transport
would hold data we cannot read synchronously.

**Connection loss.** Pending commands get `ERR jshost lost its connection to the backend Redis:
<reason>`; the next command opens a new connection. A session whose dedicated connection is
dropped (backend restart, CLIENT KILL) is closed (`session.closed`): the state of that
connection (MULTI, WATCH, subscriptions, CLIENT settings) is gone, so the client must be dropped
too, as Redis would drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jshost.errors import BackendErrors
from jshost.replies import NO_REPLY, Push, StoreReply
from jshost.resp import NEED_DATA, ProtocolError, ReplyParser
from jshost.store.remote.connect import (
    BackendError,
    connect,
    failure_text,
    receive,
    set_io_timeout,
)
from jshost.store.remote.pipeline import Pipeline

if TYPE_CHECKING:
    from jshost.store.remote.session import RemoteSession
    from jshost.store.remote.store import RemoteStore

LOG = logging.getLogger("jshost.store.remote")


class AsyncConnection:
    """A non-blocking connection whose bookkeeping is a `Pipeline` (see the module docstring)."""

    def __init__(
        self,
        store: RemoteStore,
        db: int,
        name: bytes | None,
        session: RemoteSession | None = None,
        gate: asyncio.Future[Any] | None = None,
    ) -> None:
        self.store = store
        self.session = session  # the owner of a dedicated connection; None when shared
        self.db = db
        self.loop = store.loop()
        self.sock: socket.socket | None = None
        self.parser = ReplyParser()
        self.pipeline = Pipeline(
            db,
            store.is_blocking,
            self._arity_ok,
            lambda: store.url.handshake(store.db),
            None if session is None else session.selected,
        )
        self.closed = False
        self._writing = False  # a writer callback is registered
        self._flush_scheduled = False
        self.backend_id: int | None = None  # its CLIENT ID on the backend, once open
        store.connections.add(self)
        self.opening = self.loop.create_task(self._open(name, gate))

    @property
    def out(self) -> bytearray:
        """What is still to be written."""
        return self.pipeline.out

    # -- opening and closing -----------------------------------------------------------------------

    async def _open(self, name: bytes | None, gate: asyncio.Future[Any] | None) -> None:
        """Connect (the blocking handshake runs in a thread), then start reading and writing.
        Commands submitted meanwhile wait in `out`, in order."""
        store = self.store
        try:
            if gate is not None and not gate.done():
                await asyncio.wait([gate])  # the session's earlier shared commands come first
            if self.closed:
                return
            sock, parser, self.backend_id = await self.loop.run_in_executor(
                None,
                functools.partial(
                    connect, store.url, self.db, name, store.timeout, store.connect_timeout
                ),
            )
        except BackendError as exc:
            self.fail(str(exc))
            return
        except Exception as exc:  # a bug or an odd OS error: no command may wait forever
            LOG.exception("opening a connection to the backend Redis failed")
            self.fail(BackendErrors.ERR_CONNECT_FAILED.format(address=store.url.address,
                                                              reason=failure_text(exc)))
            return
        if self.closed:  # closed while connecting (the thread could not be stopped)
            sock.close()
            return
        sock.setblocking(False)
        self.sock, self.parser = sock, parser
        self.loop.add_reader(sock.fileno(), self._on_readable)
        self.schedule_flush()

    def fail(self, text: str) -> None:
        """Close the connection; every pending command gets the error `text`."""
        if self.closed:
            return
        self.closed = True
        self.store.connections.discard(self)
        if self.sock is not None:
            fd = self.sock.fileno()
            with contextlib.suppress(Exception):  # the loop may be closed already
                self.loop.remove_reader(fd)
            with contextlib.suppress(Exception):
                self.loop.remove_writer(fd)
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.pipeline.fail(text)

    def lost(self, exc: BaseException | str) -> None:
        """The connection broke (or the server closed it: restart, CLIENT KILL, timeout)."""
        why = exc if isinstance(exc, str) else failure_text(exc)
        LOG.warning("lost a connection to the backend Redis: %s", why)
        self.fail(BackendErrors.ERR_CONNECTION_LOST.format(reason=why))
        if self.session is not None:
            # Its state (MULTI, WATCH, subscriptions, CLIENT settings) is gone: the client must
            # know, as it would when Redis drops it. Shared connections hold no client state.
            self.session.lost()

    # -- submitting --------------------------------------------------------------------------------

    def submit(self, args: Sequence[bytes], raw: bool) -> asyncio.Future[Any]:
        """Queue a stateless command (shared connections)."""
        future = self.loop.create_future()
        self.pipeline.send(args, future, raw)
        self.schedule_flush()
        return future

    def submit_tracked(
        self, args: Sequence[bytes], raw: bool
    ) -> asyncio.Future[Any] | StoreReply:
        """Queue a command on a dedicated connection, following the state it changes."""
        future = self.loop.create_future()
        replied = self.pipeline.send_tracked(args, future, raw)
        self.schedule_flush()
        return future if replied else NO_REPLY

    def _arity_ok(self, args: Sequence[bytes]) -> bool:
        try:
            return self.store.command_info().check_command(list(args)) is None
        except BackendError:
            return True  # the command fails the same way; the marker still ends its answer

    # -- writing -----------------------------------------------------------------------------------

    def schedule_flush(self) -> None:
        """Write `out` soon: one send for every command submitted in this loop iteration."""
        if self._flush_scheduled or self._writing or self.sock is None or self.store.atomic_depth:
            return
        if not self.pipeline.out:
            return
        self._flush_scheduled = True
        self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.sock is None or not self.out or self.store.atomic_depth:
            return
        self._send()
        if self.out and not self._writing and self.sock is not None:
            self._writing = True
            self.loop.add_writer(self.sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        if self.sock is None:
            return
        if self.out and not self.store.atomic_depth:
            self._send()
        if not self.out and self.sock is not None:
            self._writing = False
            self.loop.remove_writer(self.sock.fileno())

    def _send(self) -> None:
        assert self.sock is not None
        out = self.pipeline.out
        try:
            sent = self.sock.send(out)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self.lost(exc)
            return
        del out[:sent]

    # -- reading -----------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        buffer = self.store.buffer
        try:
            data = receive(sock, buffer)
            while isinstance(sock, ssl.SSLSocket) and sock.pending():  # decrypted, not on the fd
                data += receive(sock, buffer)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self.lost(exc)
            return
        if not data:
            self.lost("connection closed by the server")
            return
        self.parser.feed(data)
        self._process()

    def _process(self) -> None:
        """Hand every complete reply in the parser to the pipeline (pushes aside)."""
        parser, pipeline = self.parser, self.pipeline
        try:
            while not self.closed:  # (a push handler may close the session)
                if pipeline.wants_raw():
                    item = parser.get_reply_with_raw()
                    if item is None:
                        break
                    value, raw = item
                else:
                    value, raw = parser.get_reply(), b""
                    if value is NEED_DATA:
                        break
                if type(value) is Push:
                    self._push(value)
                else:
                    pipeline.reply(value, raw)
        except ProtocolError as exc:
            self.lost(exc)
            return
        if pipeline.out:  # (a blocking command's reply released what it held back)
            self.schedule_flush()

    def _push(self, push: Push) -> None:
        session = self.session
        if session is None:
            LOG.debug("push message on a shared connection dropped: %r", push)
            return
        handler = session.on_push
        if handler is None:
            session.pushes.append(push)
            return
        try:
            handler(push)
        except Exception:  # a bad handler must not take the connection down
            LOG.exception("push handler failed")

    # -- atomic sections ---------------------------------------------------------------------------

    def drain(self) -> None:
        """Synchronously write what is buffered and read replies until nothing but a blocking
        command is pending (called by `RemoteStore.begin_atomic`)."""
        sock = self.sock
        pipeline = self.pipeline
        if sock is None or self.closed or not (pipeline.out or self._must_wait()):
            return
        wait, bounded = self.store.wait_limit()
        try:
            sock.setblocking(True)  # reads are bounded by SO_RCVTIMEO (see `connect`)
            if bounded:  # no longer than the section may last
                set_io_timeout(sock, wait)
            while True:
                if pipeline.out:  # (again after a blocking reply released held-back commands)
                    sock.sendall(pipeline.out)
                    pipeline.out.clear()
                if not self._must_wait():
                    break
                data = receive(sock, self.store.buffer)
                if not data:
                    raise ConnectionResetError(0, "connection closed by the server")
                self.parser.feed(data)
                self._process()  # (its flush waits: the section has begun)
        except OSError as exc:
            self.lost(exc)
        finally:
            if self.sock is not None:
                if bounded:
                    set_io_timeout(self.sock, self.store.timeout)
                self.sock.setblocking(False)

    def _must_wait(self) -> bool:
        return self.pipeline.must_wait() and not self.closed
