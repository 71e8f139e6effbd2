"""The sync connection: one blocking socket per remote store, for what cannot await.

`Session.call` (JS `client.call` inside an atomic section, on the event-loop thread) does one
blocking round trip on it; it SELECTs the session's database when it differs from the socket's. A
blocking command is sent inside a `MULTI`/`EXEC` of its own, where Redis runs it without
blocking, and the EXEC reply is unwrapped. `command_info()`, `is_oom()` and the trigger lease use
it too. Inside an atomic section its waits end with the section's time limit
(`RemoteStore.wait_limit`), and the section's first command carries the fence that opens the
section in the keyspace event stream (`RemoteStore.open_section`).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from jshost.errors import BackendErrors
from jshost.replies import NO_REPLY, ErrorReply, Reply, StoreReply
from jshost.resp import ProtocolError, ReplyParser, encode_command
from jshost.store.remote.connect import (
    BackendError,
    connect,
    exec_unwrapped,
    failure_text,
    read_replies,
    receive,
    set_io_timeout,
)
from jshost.store.remote.pipeline import is_ok

if TYPE_CHECKING:
    from jshost.store.remote.session import RemoteSession
    from jshost.store.remote.store import RemoteStore

LOG = logging.getLogger("jshost.store.remote")

#: Commands that change the state of the connection they run on: a session that sends one gets a
#: dedicated connection. (Blocking commands are found through the command table.)
STATEFUL: Final = frozenset(
    (
        b"select", b"watch", b"unwatch", b"multi", b"exec", b"discard",
        b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe",
        b"ssubscribe", b"sunsubscribe", b"client", b"hello", b"auth", b"reset",
        b"readonly", b"readwrite",
    )
)  # fmt: skip
#: They would turn a connection into a stream jshost cannot multiplex.
UNSUPPORTED: Final = frozenset((b"monitor", b"sync", b"psync"))
#: What `call` refuses: it runs on the connection every session shares.
_CALL_REFUSED: Final = (STATEFUL | UNSUPPORTED | {b"quit"}) - {b"select"}


class SyncConnection:
    """The blocking connection behind `Session.call`, `command_info` and `is_oom`."""

    def __init__(self, store: RemoteStore) -> None:
        self.store = store
        self.sock: socket.socket | None = None
        self.parser = ReplyParser()
        self.db = store.db
        # Replies of commands sent without waiting (`send_only`), skipped by the next read.
        self.unread = 0
        self.io_timeout = store.timeout  # the socket's SO_RCVTIMEO / SO_SNDTIMEO now

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.unread = 0

    def call(self, session: RemoteSession, args: Sequence[bytes]) -> StoreReply:
        """Run `args` for `session` now (see `Session.call`); errors are returned."""
        if not args:
            return NO_REPLY
        name = args[0].lower()
        if name in _CALL_REFUSED:
            text = name.decode("utf-8", "replace")
            return ErrorReply(BackendErrors.ERR_CALL_STATEFUL.format(name=text))
        try:
            self._fresh_socket()  # first: a reconnection changes the database to select
        except BackendError as exc:
            return ErrorReply(str(exc))
        commands: list[Sequence[bytes]] = []
        selecting = self.db != session.db
        if selecting:
            commands.append([b"SELECT", b"%d" % session.db])
        blocking = self.store.is_blocking(args)
        commands += [[b"MULTI"], args, [b"EXEC"]] if blocking else [args]
        try:
            replies = self._send_and_read(commands)
        except BackendError as exc:
            return ErrorReply(str(exc))
        if selecting:
            select_reply, *replies = replies
            if not is_ok(select_reply):
                return select_reply  # the session's database vanished (CONFIG SET databases)
            self.db = session.db
        reply = exec_unwrapped(replies) if blocking else replies[0]
        if name == b"select" and is_ok(reply):
            self.db = int(args[1])
            session.selected(self.db)
        return reply

    def round_trip(self, commands: Sequence[Sequence[bytes]]) -> list[Reply]:
        """Send `commands` pipelined and read their replies; raises `BackendError`."""
        self._fresh_socket()
        return self._send_and_read(commands)

    def send_only(self, command: Sequence[bytes]) -> bool:
        """Send `command` without waiting for its reply (the next read skips it); False if the
        backend could not be reached."""
        try:
            sock = self._fresh_socket()
            sock.sendall(encode_command(list(command)))
        except OSError as exc:
            self.close()
            LOG.warning("keyspace event fence failed: %s", failure_text(exc))
            return False
        except BackendError as exc:
            LOG.warning("keyspace event fence failed: %s", exc)
            return False
        self.unread += 1
        return True

    def _send_and_read(self, commands: Sequence[Sequence[bytes]]) -> list[Reply]:
        sock = self.sock
        assert sock is not None
        store = self.store
        opening = store.atomic_depth and not store.section_open
        if opening:  # the section's first command: see `RemoteStore.begin_atomic`
            store.section_open = True
            fence = store.open_section()
            if fence is not None:
                commands = [fence, *commands]
        skip = self.unread
        wait, bounded = store.wait_limit()
        if wait is not None and wait <= 0:
            raise BackendError(BackendErrors.ERR_DEADLINE)
        if wait != self.io_timeout:
            set_io_timeout(sock, wait)
            self.io_timeout = wait
        try:
            sock.sendall(b"".join(encode_command(list(c)) for c in commands))
            self.unread = 0
            replies = read_replies(sock, self.parser, skip + len(commands), store.buffer)
        except (OSError, ProtocolError) as exc:
            self.close()
            if opening:
                store.section_fence_lost()
            if bounded and isinstance(exc, (TimeoutError, BlockingIOError,
                                            ssl.SSLWantReadError, ssl.SSLWantWriteError)):
                raise BackendError(BackendErrors.ERR_DEADLINE) from None  # (it may still run later)
            text = BackendErrors.ERR_CONNECTION_LOST.format(reason=failure_text(exc))
            raise BackendError(text) from None
        return replies[skip + 1:] if opening and fence is not None else replies[skip:]

    def _fresh_socket(self) -> socket.socket:
        """The socket, (re)connected if it was never opened or the server has closed it."""
        if self.sock is not None and self._closed_by_server(self.sock):
            self.close()
        if self.sock is None:
            store = self.store
            self.sock, self.parser, _ = connect(
                store.url, store.db, b"jshost-sync", store.timeout, store.connect_timeout
            )
            self.db = store.db
            self.io_timeout = store.timeout
        return self.sock

    def _closed_by_server(self, sock: socket.socket) -> bool:
        """Whether the idle socket has seen EOF (the backend restarted): reconnecting before the
        write spares the command a failure. Unexpected data is kept for the parser."""
        try:
            if isinstance(sock, ssl.SSLSocket):
                readable, _, _ = select.select([sock], [], [], 0)
                if not readable and not sock.pending():
                    return False
                sock.setblocking(False)  # readable may be a TLS record with no data in it
                try:
                    data = receive(sock, self.store.buffer)
                finally:
                    sock.setblocking(True)
            else:  # one syscall, no mode switch
                data = receive(sock, self.store.buffer, socket.MSG_DONTWAIT)
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:
            return True
        if not data:
            return True
        self.parser.feed(data)
        return False
