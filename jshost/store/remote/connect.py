"""Opening a connection to the backend Redis, and the blocking socket reads every connection uses.

Every connection speaks **RESP3** (`HELLO 3 [AUTH user pass]`), so replies keep their types (maps,
sets, doubles, verbatim strings); they are parsed by jshost's own `ReplyParser` (redis-py and
hiredis fold the RESP3 types away).
"""

from __future__ import annotations

import socket
import ssl
import struct

from jshost.errors import BackendErrors
from jshost.replies import ErrorReply, Push, Reply
from jshost.resp import NEED_DATA, ProtocolError, ReplyParser, encode_command
from jshost.store.remote.url import RedisURL


class BackendError(ConnectionError):
    """The backend Redis could not be reached or refused the handshake; `str()` is the text of
    the error reply a client would get (`jshost.errors.BackendErrors`)."""


def failure_text(exc: BaseException) -> str:
    """A short text for an I/O failure."""
    if isinstance(exc, TimeoutError | BlockingIOError | ssl.SSLWantReadError):
        return "timed out"
    if isinstance(exc, ProtocolError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def receive(sock: socket.socket, buffer: memoryview, flags: int = 0) -> bytes:
    """One read through the preallocated `buffer` (a fresh 256 KiB bytes object per `recv`
    would cost an mmap/munmap pair each time); b"" at EOF."""
    size = sock.recv_into(buffer, len(buffer), flags)
    return buffer[:size].tobytes()


def read_replies(
    sock: socket.socket, parser: ReplyParser, count: int, buffer: memoryview
) -> list[Reply]:
    """Read `count` replies from a blocking socket (push messages are skipped)."""
    replies: list[Reply] = []
    while len(replies) < count:
        value = parser.get_reply()
        if value is NEED_DATA:
            data = receive(sock, buffer)
            if not data:
                raise ConnectionResetError(0, "connection closed by the server")
            parser.feed(data)
        elif type(value) is not Push:
            replies.append(value)
    return replies


def connect(
    url: RedisURL, db: int, name: bytes | None, timeout: float | None, connect_timeout: float
) -> tuple[socket.socket, ReplyParser, int | None]:
    """Open a blocking socket to the backend and run the handshake; raises `BackendError`.
    Also gives the connection's client id on the backend (from HELLO's reply)."""
    try:
        sock = url.open_socket(connect_timeout)
    except OSError as exc:
        text = BackendErrors.ERR_CONNECT_FAILED.format(address=url.address,
                                                       reason=failure_text(exc))
        raise BackendError(text) from None
    try:
        if url.tls:
            sock = url.ssl_context().wrap_socket(sock, server_hostname=url.host)
        parser = ReplyParser()
        commands = url.handshake(db, name)
        sock.sendall(b"".join(encode_command(c) for c in commands))
        replies = read_replies(sock, parser, len(commands), memoryview(bytearray(4096)))
    except (OSError, ProtocolError) as exc:
        sock.close()
        text = BackendErrors.ERR_CONNECT_FAILED.format(address=url.address,
                                                       reason=failure_text(exc))
        raise BackendError(text) from None
    error = _handshake_error(url, replies)
    if error is not None:
        sock.close()
        raise BackendError(error)
    set_io_timeout(sock, timeout)
    hello = replies[0]
    backend_id = hello.get(b"id") if isinstance(hello, dict) else None
    return sock, parser, backend_id if isinstance(backend_id, int) else None


def set_io_timeout(sock: socket.socket, timeout: float | None) -> None:
    """Blocking mode, with reads and writes bounded by the kernel (SO_RCVTIMEO/SO_SNDTIMEO)
    rather than Python's socket timeout: that one polls before every recv (a syscall per round
    trip) and would make the MSG_DONTWAIT probe of `_closed_by_server` wait."""
    sock.settimeout(None)
    seconds, micros = 0, 0  # (0, 0): no limit
    if timeout is not None:
        timeout = max(timeout, 0.001)
        seconds = int(timeout)
        micros = int((timeout - seconds) * 1e6)
    value = struct.pack("ll", seconds, micros)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def _handshake_error(url: RedisURL, replies: list[Reply]) -> str | None:
    """The error text for a failed handshake, or None if it went well."""
    hello = replies[0]
    if isinstance(hello, ErrorReply):
        if hello.startswith(BackendErrors.NO_HELLO):
            return BackendErrors.ERR_NO_RESP3.format(address=url.address, reason=hello)
        return BackendErrors.ERR_CONNECT_FAILED.format(address=url.address, reason=hello)
    for reply in replies[1:]:
        if isinstance(reply, ErrorReply):
            return BackendErrors.ERR_CONNECT_FAILED.format(address=url.address, reason=reply)
    return None


def exec_unwrapped(replies: list[Reply]) -> Reply:
    """The reply of the one command of a MULTI / cmd / EXEC triple."""
    _, queued, result = replies
    if isinstance(queued, ErrorReply):
        return queued  # refused when queued: what the command alone would have answered
    if type(result) is list and len(result) == 1:
        only: Reply = result[0]
        return only
    return result  # an EXEC error (EXECABORT, or a WATCH-less null cannot happen here)
