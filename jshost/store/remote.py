"""The remote store: a real Redis (or Valkey) reached through connections jshost owns.

`RemoteStore("redis://[[user]:password@]host[:port][/db]")` (or `rediss://` for TLS, with
`?ssl_cert_reqs=none|optional|required` and `?ssl_ca_certs=/path`), or a Unix socket:
`unix://[[user]:password@]/path/to/redis.sock[?db=N]` (redis-py's `?password=` works too). Every connection speaks
**RESP3** (`HELLO 3 [AUTH user pass]`), so replies keep their types (maps, sets, doubles,
verbatim strings); they are parsed by jshost's own `ReplyParser` (redis-py and hiredis fold the
RESP3 types away). `command_info()` builds the command table from the server's `COMMAND`.

Three kinds of connection:

* **The sync connection** (one per store, blocking socket). `Session.call` (JS `client.call`
  inside an atomic section, on the event-loop thread) does one blocking round trip on it; it
  SELECTs the session's database when it differs from the socket's. A blocking command is
  sent inside a `MULTI`/`EXEC` of its own, where Redis runs it without blocking, and the EXEC
  reply is unwrapped. `command_info()` and `is_oom()` use it too.
* **Shared connections** (`shared_connections`, default 1). `Session.execute` of a stateless
  command is written to the session's shared connection and pipelined with everyone else's:
  each connection keeps a FIFO of pending replies, and a session always uses the same shared
  connection, so its replies come back in the order it sent the commands.
* **Dedicated connections.** The first time a session sends a stateful or blocking command
  (SELECT, WATCH/MULTI/EXEC/DISCARD, BLPOP & co, XREAD ... BLOCK, WAIT, the SUBSCRIBE family,
  CLIENT, HELLO, AUTH, RESET), it gets a connection of its own, opened lazily, and keeps it from
  then on. The switch waits for the session's commands still in flight on the shared connection,
  so the backend runs them in order. Push messages (pub/sub) on it go to `session.on_push`
  (or `session.pushes` when that is None).

**Why the async connections are not asyncio streams.** An atomic section (SPEC §0.4) must start
only once every command already sent has been answered, and it is entered synchronously by the
host (`store.begin_atomic()`), on the loop thread, where nothing can be awaited. So this module
owns every read: the async connections are non-blocking sockets watched with
`loop.add_reader` / `loop.add_writer`. `begin_atomic` switches each one to blocking mode, writes
what is buffered, reads until its FIFO is empty (or until its head is a blocking command, which
is not waited for), completes those futures, and switches it back. Commands submitted during the
section are buffered and only written at `end_atomic`. An asyncio transport would hold data we
cannot read synchronously.

**Raw replies.** `RemoteSession.execute_raw` returns the exact RESP3 bytes Redis sent, so the
server can forward them unchanged to a RESP3 client. A RESP2 client gets the typed reply of
`execute` re-encoded by the server (`jshost.resp.encode(reply, 2)`).

**Connection loss.** Pending commands get `ERR jshost lost its connection to the backend Redis:
<reason>`; the next command opens a new connection. A session whose dedicated connection is
dropped (backend restart, CLIENT KILL) is closed (`session.closed`): the state of that
connection (MULTI, WATCH, subscriptions, CLIENT settings) is gone, so the client must be
dropped too, as Redis would drop it.

Clients that talk to the backend Redis directly, bypassing jshost, are outside the atomicity
guarantee.

**Keyspace events (for triggers, SPEC §7/§8, §11 rows 7-8).** `start_keyspace_events()` makes
sure `notify-keyspace-events` includes `E` (keyevent channels), `A` (every class) and `m`
(keymiss) — with `CONFIG SET` if it does not, logging it, or raising `BackendError` with a clear
text if Redis refuses — and opens one more connection that `PSUBSCRIBE`s to
`__keyevent@*__:*` and `SUBSCRIBE`s to this store's *fence* channel `jshost:fence:<id>`. Every
event is handed to `on_keyspace_event(tag, db, event, key)` in the order Redis sent it, where
`tag` is `RemoteStore.SECTION` for the events caused inside an atomic section (the host's own
JS writes, which it mutes) and None for the rest. Redis delivers a connection's pub/sub
messages in the order the commands ran, so a `PUBLISH` on the fence channel marks a point in
the stream of events:

* An atomic section is *opened* in the event stream lazily, by its first command on the sync
  connection (a section that never touches the store — a function returning a constant — costs
  no round trip): a fence naming the section's start is pipelined ahead of that command. While
  no keyspace trigger exists (`sections_tagged`), sections send no fences at all. `end_atomic` of an opened section publishes a fence naming its end without
  waiting for the reply (read with the next sync round trip). The subscriber tags what comes
  between the two fences `SECTION`: the section's own events, by their position in Redis's
  stream, not by when they are read. Events read meanwhile are queued and delivered once the
  section is over.
* After a client's command through `execute` / `execute_raw` whose keys may interest a trigger
  (`keyspace_filter(args)`), the session publishes a fence and awaits its return: by then every
  event of that command has been delivered — sync keyspace triggers have run — before the
  client gets its reply.
* Events caused by clients that bypass jshost (or another jshost instance) are delivered as
  they arrive, with no such guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import select
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from jshost.errors import BackendErrors
from jshost.replies import OK, ErrorReply, Push, Reply, Status
from jshost.resp import NEED_DATA, ProtocolError, ReplyParser, encode, encode_command
from jshost.store.base import NO_REPLY, PushHandler, Session, Store
from jshost.store.command_table import CommandTable

LOG = logging.getLogger(__name__)

# Error texts users can see: their one home is jshost/errors.py.
ERR_CONNECTION_LOST: Final = BackendErrors.ERR_CONNECTION_LOST
ERR_CONNECT_FAILED: Final = BackendErrors.ERR_CONNECT_FAILED
ERR_NO_RESP3: Final = BackendErrors.ERR_NO_RESP3
ERR_STORE_CLOSED: Final = BackendErrors.ERR_STORE_CLOSED
ERR_UNSUPPORTED: Final = BackendErrors.ERR_UNSUPPORTED
ERR_CALL_STATEFUL: Final = BackendErrors.ERR_CALL_STATEFUL
ERR_BAD_URL: Final = BackendErrors.ERR_BAD_URL
ERR_NOTIFY_REFUSED: Final = BackendErrors.ERR_NOTIFY_REFUSED
ERR_EVENTS_LOST: Final = BackendErrors.ERR_EVENTS_LOST
ERR_DEADLINE: Final = BackendErrors.ERR_DEADLINE

DEFAULT_PORT: Final = 6379
OOM_CACHE_SECONDS: Final = 0.1  # SPEC §5.3: "stored for a short time"
_READ_SIZE: Final = 256 * 1024

#: Commands that change the state of the connection they run on: a session that sends one gets a
#: dedicated connection. (Blocking commands are found through the command table.)
_STATEFUL: Final = frozenset(
    (
        b"select", b"watch", b"unwatch", b"multi", b"exec", b"discard",
        b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe",
        b"ssubscribe", b"sunsubscribe", b"client", b"hello", b"auth", b"reset",
        b"readonly", b"readwrite",
    )
)  # fmt: skip
#: Commands whose success answers only with push messages (RESP3), never with a reply.
_SUBSCRIBE: Final = frozenset(
    (b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe", b"sunsubscribe")
)
#: They would turn a connection into a stream jshost cannot multiplex.
_UNSUPPORTED: Final = frozenset((b"monitor", b"sync", b"psync"))
#: What `call` refuses: it runs on the connection every session shares.
_CALL_REFUSED: Final = (_STATEFUL | _UNSUPPORTED | {b"quit"}) - {b"select"}
#: Used until the command table is loaded (Redis 7.2's `blocking` commands, plus WAIT/WAITAOF).
_BLOCKING_FALLBACK: Final = frozenset(
    (b"blpop", b"brpop", b"brpoplpush", b"blmove", b"blmpop", b"bzpopmin", b"bzpopmax",
     b"bzmpop", b"wait", b"waitaof")
)  # fmt: skip
#: After a SUBSCRIBE-family command, this PING's reply (a bulk string in RESP3, even while
#: subscribed) marks the end of its answer: either nothing but pushes, or one error (ACL, arity).
_MARKER: Final = b"jshost-subscribe-barrier"
_MARKER_COMMAND: Final = encode_command([b"PING", _MARKER])


class BackendError(ConnectionError):
    """The backend Redis could not be reached or refused the handshake; `str()` is the text of
    the error reply a client would get (see the ERR_* constants)."""


# ------------------------------------------------------------------------------------------------
# The URL
# ------------------------------------------------------------------------------------------------


def redact(url: str) -> str:
    """`url` with its password (user-info or `?password=`) replaced by `***`, for messages: a
    password never reaches a log or an error text."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}{sep and ':***'}@{hostport}" if sep else netloc
    query = "&".join(
        f"{key}=***" if key == "password" else item
        for item in parts.query.split("&") if item
        for key in [item.partition("=")[0]]
    )
    redacted = url.replace(parts.netloc, netloc, 1) if netloc != parts.netloc else url
    return redacted.replace(parts.query, query, 1) if query != parts.query else redacted



@dataclass(frozen=True)
class RedisURL:
    """Where the backend is and how to log in (parsed from `redis://` / `rediss://`)."""

    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_verify: ssl.VerifyMode = ssl.CERT_REQUIRED
    tls_ca_certs: str | None = None
    #: The Unix socket to connect to (`unix://`); then `host` and `port` are unused.
    path: str | None = None

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        """`redis://[[user]:password@]host[:port][/db][?db=N]`, `rediss://...` for TLS,
        `unix://[[user]:password@]/path/to/redis.sock[?db=N]` for a Unix socket."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                ERR_BAD_URL.format(url=redact(url), reason="the scheme must be redis, rediss or unix")
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.scheme == "unix":
            return cls._parse_unix(url, parts.path, parts.username, parts.password, query)
        try:
            port = parts.port or DEFAULT_PORT
            db_text = parts.path.strip("/") or query.get("db", "0")
            db = int(db_text)
        except ValueError as exc:
            raise ValueError(ERR_BAD_URL.format(url=redact(url), reason=exc)) from None
        verify = {
            "none": ssl.CERT_NONE,
            "optional": ssl.CERT_OPTIONAL,
            "required": ssl.CERT_REQUIRED,
        }
        reqs = query.get("ssl_cert_reqs", "required").lower()
        if reqs not in verify or db < 0:
            raise ValueError(ERR_BAD_URL.format(url=redact(url), reason="bad db or ssl_cert_reqs"))
        return cls(
            host=parts.hostname or "localhost",
            port=port,
            db=db,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=parts.scheme == "rediss",
            tls_verify=verify[reqs],
            tls_ca_certs=query.get("ssl_ca_certs"),
        )

    @classmethod
    def _parse_unix(
        cls, url: str, path: str, user: str | None, password: str | None, query: dict[str, str]
    ) -> RedisURL:
        """The `unix://` form: the whole path is the socket, so the database is `?db=N`."""
        if not path:
            raise ValueError(ERR_BAD_URL.format(url=redact(url), reason="no socket path"))
        try:
            db = int(query.get("db", "0"))
        except ValueError as exc:
            raise ValueError(ERR_BAD_URL.format(url=redact(url), reason=exc)) from None
        if db < 0:
            raise ValueError(ERR_BAD_URL.format(url=redact(url), reason="bad db"))
        if password is None:
            password = query.get("password")
        if not user:
            user = query.get("username")
        return cls(
            host="localhost",
            db=db,
            username=unquote(user) if user else None,
            password=unquote(password) if password is not None else None,
            path=unquote(path),
        )

    @property
    def address(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def open_socket(self, timeout: float) -> socket.socket:
        """A connected socket to the server (Unix or TCP, no TLS yet); raises OSError."""
        if self.path is None:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(self.path)
        except BaseException:
            sock.close()
            raise
        return sock

    def handshake(self, db: int, name: bytes | None = None) -> list[list[bytes]]:
        """The commands that make a fresh (or RESET) connection usable: HELLO 3 [AUTH] [SETNAME],
        then SELECT when the database is not 0."""
        hello = [b"HELLO", b"3"]
        if self.password is not None:
            hello += [b"AUTH", (self.username or "default").encode(), self.password.encode()]
        if name:
            hello += [b"SETNAME", name]
        commands = [hello]
        if db:
            commands.append([b"SELECT", b"%d" % db])
        return commands

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.tls_ca_certs)
        if self.tls_verify != ssl.CERT_REQUIRED:
            context.check_hostname = False
        context.verify_mode = self.tls_verify
        return context


# ------------------------------------------------------------------------------------------------
# Blocking socket helpers
# ------------------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """A short text for an I/O failure."""
    if isinstance(exc, TimeoutError | BlockingIOError | ssl.SSLWantReadError):
        return "timed out"
    if isinstance(exc, ProtocolError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _receive(sock: socket.socket, buffer: memoryview, flags: int = 0) -> bytes:
    """One read through the preallocated `buffer` (a fresh 256 KiB bytes object per `recv`
    would cost an mmap/munmap pair each time); b"" at EOF."""
    size = sock.recv_into(buffer, len(buffer), flags)
    return buffer[:size].tobytes()


def _read_replies(
    sock: socket.socket, parser: ReplyParser, count: int, buffer: memoryview
) -> list[Reply]:
    """Read `count` replies from a blocking socket (push messages are skipped)."""
    replies: list[Reply] = []
    while len(replies) < count:
        value = parser.get_reply()
        if value is NEED_DATA:
            data = _receive(sock, buffer)
            if not data:
                raise ConnectionResetError(0, "connection closed by the server")
            parser.feed(data)
        elif type(value) is not Push:
            replies.append(value)
    return replies


def _connect(
    url: RedisURL, db: int, name: bytes | None, timeout: float | None, connect_timeout: float
) -> tuple[socket.socket, ReplyParser, int | None]:
    """Open a blocking socket to the backend and run the handshake; raises `BackendError`.
    Also gives the connection's client id on the backend (from HELLO's reply)."""
    try:
        sock = url.open_socket(connect_timeout)
    except OSError as exc:
        text = ERR_CONNECT_FAILED.format(address=url.address, reason=_reason(exc))
        raise BackendError(text) from None
    try:
        if url.tls:
            sock = url.ssl_context().wrap_socket(sock, server_hostname=url.host)
        parser = ReplyParser()
        commands = url.handshake(db, name)
        sock.sendall(b"".join(encode_command(c) for c in commands))  # type: ignore[arg-type]
        replies = _read_replies(sock, parser, len(commands), memoryview(bytearray(4096)))
    except (OSError, ProtocolError) as exc:
        sock.close()
        text = ERR_CONNECT_FAILED.format(address=url.address, reason=_reason(exc))
        raise BackendError(text) from None
    error = _handshake_error(url, replies)
    if error is not None:
        sock.close()
        raise BackendError(error)
    _set_io_timeout(sock, timeout)
    hello = replies[0]
    backend_id = hello.get(b"id") if isinstance(hello, dict) else None
    return sock, parser, backend_id if isinstance(backend_id, int) else None


def _set_io_timeout(sock: socket.socket, timeout: float | None) -> None:
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
        if hello.startswith(("NOPROTO", "ERR unknown command")):
            return ERR_NO_RESP3.format(address=url.address, reason=hello)
        return ERR_CONNECT_FAILED.format(address=url.address, reason=hello)
    for reply in replies[1:]:
        if isinstance(reply, ErrorReply):
            return ERR_CONNECT_FAILED.format(address=url.address, reason=reply)
    return None


def _is_ok(reply: Reply) -> bool:
    return type(reply) is Status and reply == b"OK"


def _exec_unwrapped(replies: list[Reply]) -> Reply:
    """The reply of the one command of a MULTI / cmd / EXEC triple."""
    _, queued, result = replies
    if isinstance(queued, ErrorReply):
        return queued  # refused when queued: what the command alone would have answered
    if type(result) is list and len(result) == 1:
        return result[0]
    return result  # an EXEC error (EXECABORT, or a WATCH-less null cannot happen here)


# ------------------------------------------------------------------------------------------------
# The sync connection
# ------------------------------------------------------------------------------------------------


class _SyncConnection:
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

    def call(self, session: RemoteSession, args: Sequence[bytes]) -> Reply:
        """Run `args` for `session` now (see `Session.call`); errors are returned."""
        if not args:
            return NO_REPLY
        name = args[0].lower()
        if name in _CALL_REFUSED:
            return ErrorReply(ERR_CALL_STATEFUL.format(name=name.decode("utf-8", "replace")))
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
            if not _is_ok(select_reply):
                return select_reply  # the session's database vanished (CONFIG SET databases)
            self.db = session.db
        reply = _exec_unwrapped(replies) if blocking else replies[0]
        if name == b"select" and _is_ok(reply):
            self.db = session._db = int(args[1])
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
            LOG.warning("keyspace event fence failed: %s", _reason(exc))
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
        opening = store._atomic and not store._section_open
        if opening:  # the section's first command: see `RemoteStore.begin_atomic`
            store._section_open = True
            fence = store._open_section()
            if fence is not None:
                commands = [fence, *commands]
        skip = self.unread
        wait, bounded = store._wait_limit()
        if wait is not None and wait <= 0:
            raise BackendError(ERR_DEADLINE)
        if wait != self.io_timeout:
            _set_io_timeout(sock, wait)
            self.io_timeout = wait
        try:
            sock.sendall(b"".join(encode_command(list(c)) for c in commands))
            self.unread = 0
            replies = _read_replies(sock, self.parser, skip + len(commands), store._buffer)
        except (OSError, ProtocolError) as exc:
            self.close()
            if opening:
                store._section_fence_lost()
            if bounded and isinstance(exc, (TimeoutError, BlockingIOError,
                                            ssl.SSLWantReadError, ssl.SSLWantWriteError)):
                raise BackendError(ERR_DEADLINE) from None  # (it may still run later)
            raise BackendError(ERR_CONNECTION_LOST.format(reason=_reason(exc))) from None
        return replies[skip + 1:] if opening and fence is not None else replies[skip:]

    def _fresh_socket(self) -> socket.socket:
        """The socket, (re)connected if it was never opened or the server has closed it."""
        if self.sock is not None and self._closed_by_server(self.sock):
            self.close()
        if self.sock is None:
            store = self.store
            self.sock, self.parser, _ = _connect(
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
                    data = _receive(sock, self.store._buffer)
                finally:
                    sock.setblocking(True)
            else:  # one syscall, no mode switch
                data = _receive(sock, self.store._buffer, socket.MSG_DONTWAIT)
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:
            return True
        if not data:
            return True
        self.parser.feed(data)
        return False


# ------------------------------------------------------------------------------------------------
# Async connections
# ------------------------------------------------------------------------------------------------


class _Entry:
    """A command written (or about to be) whose reply is awaited."""

    __slots__ = ("blocking", "error", "future", "hook", "marker", "raw")

    def __init__(
        self,
        future: asyncio.Future[Any] | None,
        raw: bool = False,
        blocking: bool = False,
        hook: Callable[[Reply], None] | None = None,
        marker: bool = False,
    ) -> None:
        self.future = future  # None: an internal command, its reply is dropped
        self.raw = raw  # complete with the reply's bytes instead of its value
        self.blocking = blocking  # an atomic section does not wait for it
        self.hook = hook  # sees the reply first (state tracking on dedicated connections)
        self.marker = marker  # a SUBSCRIBE-family command, answered when _MARKER comes back
        self.error: tuple[Reply, bytes] | None = None  # its error, if it had one


class _AsyncConnection:
    """A non-blocking connection with a FIFO of pending replies (see the module docstring)."""

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
        self.pending: deque[_Entry] = deque()
        self.out = bytearray()
        self.closed = False
        self._writing = False  # a writer callback is registered
        self._flush_scheduled = False
        # What the commands submitted so far will have done (dedicated connections): known at
        # submit time, because it decides whether a command gets a reply at all.
        self.in_multi = False
        self.queued: list[Sequence[bytes]] = []
        self.reply_mode = b"on"
        # Commands held back behind a blocking one still waiting (see `_write`).
        self._held_by: _Entry | None = None
        self.later: deque[tuple[bytes, _Entry | None]] = deque()
        self.backend_id: int | None = None  # its CLIENT ID on the backend, once open
        store._conns.add(self)
        self.opening = self.loop.create_task(self._open(name, gate))

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
                    _connect, store.url, self.db, name, store.timeout, store.connect_timeout
                ),
            )
        except BackendError as exc:
            self.fail(str(exc))
            return
        except Exception as exc:  # a bug or an odd OS error: no command may wait forever
            LOG.exception("opening a connection to the backend Redis failed")
            self.fail(ERR_CONNECT_FAILED.format(address=store.url.address, reason=_reason(exc)))
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
        self.store._conns.discard(self)
        if self.sock is not None:
            fd = self.sock.fileno()
            with contextlib.suppress(Exception):  # the loop may be closed already
                self.loop.remove_reader(fd)
            with contextlib.suppress(Exception):
                self.loop.remove_writer(fd)
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.later.clear()
        error = ErrorReply(text)
        raw = encode(error, 3)
        pending, self.pending = self.pending, deque()
        for entry in pending:
            _complete(entry, error, raw)

    def lost(self, exc: BaseException | str) -> None:
        """The connection broke (or the server closed it: restart, CLIENT KILL, timeout)."""
        reason = exc if isinstance(exc, str) else _reason(exc)
        LOG.warning("lost a connection to the backend Redis: %s", reason)
        self.fail(ERR_CONNECTION_LOST.format(reason=reason))
        if self.session is not None:
            # Its state (MULTI, WATCH, subscriptions, CLIENT settings) is gone: the client must
            # know, as it would when Redis drops it. Shared connections hold no client state.
            self.session._mark_closed()

    # -- submitting --------------------------------------------------------------------------------

    def submit(self, args: Sequence[bytes], raw: bool) -> asyncio.Future[Any]:
        """Queue a stateless command (shared connections)."""
        future = self.loop.create_future()
        self.pending.append(_Entry(future, raw))
        self.out += encode_command(args)  # type: ignore[arg-type]
        self.schedule_flush()
        return future

    def submit_tracked(self, args: Sequence[bytes], raw: bool) -> asyncio.Future[Any] | Reply:
        """Queue a command on a dedicated connection, following the state it changes."""
        name = args[0].lower()
        data = encode_command(list(args))  # type: ignore[arg-type]
        if self._without_reply(name, args):
            self._write(data, None)
            return NO_REPLY
        future = self.loop.create_future()
        entry = _Entry(future, raw)
        if name in _SUBSCRIBE and not self.in_multi and self._arity_ok(args):
            entry.marker = True
            data += _MARKER_COMMAND
        elif self.in_multi:
            self._track_multi(name, args, entry)
        else:
            self._track(name, args, entry)
        if name == b"hello" and len(args) > 1 and args[1] == b"2":
            # The backend connection stays on RESP3: the server answers the client's protocol.
            data = encode_command([args[0], b"3", *args[2:]])  # type: ignore[list-item]
        self.pending.append(entry)
        self._write(data, entry if entry.blocking else None)
        if name == b"reset":  # it logs out and goes back to RESP2: log in again at once
            for command in self.store.url.handshake(self.store.db):
                self.pending.append(_Entry(None))
                self._write(encode_command(command), None)  # type: ignore[arg-type]
        return future

    def _write(self, data: bytes, blocking: _Entry | None) -> None:
        """Queue `data` for writing, unless a blocking command written earlier is still waiting:
        then hold it back until that one is answered. Redis runs a blocked client's next
        commands as soon as it is served, which could be in the middle of an atomic section
        (a JS write can serve it); held here, they wait for the section to end."""
        if self._held_by is not None:
            self.later.append((data, blocking))
            return
        self.out += data
        self._held_by = blocking
        self.schedule_flush()

    def _release(self) -> None:
        """The blocking command holding back the queue was answered: write what waited, up to
        and including the next blocking command."""
        self._held_by = None
        while self.later and self._held_by is None:
            data, blocking = self.later.popleft()
            self.out += data
            self._held_by = blocking
        self.schedule_flush()

    def _without_reply(self, name: bytes, args: Sequence[bytes]) -> bool:
        """CLIENT REPLY OFF / SKIP: whether this command gets no reply (and update the mode)."""
        if name == b"reset":  # it turns replies back on before answering
            self.reply_mode = b"on"
            return False
        if (
            name == b"client"
            and len(args) == 3
            and args[1].lower() == b"reply"
            and not self.in_multi
        ):
            mode = args[2].lower()
            if mode in (b"off", b"skip", b"on"):
                self.reply_mode = mode
                return mode != b"on"  # Redis clears OFF/SKIP before answering ON
        if self.reply_mode == b"off":
            return True
        if self.reply_mode == b"skip":
            self.reply_mode = b"on"
            return True
        return False

    def _arity_ok(self, args: Sequence[bytes]) -> bool:
        try:
            return self.store.command_info().check_command(list(args)) is None
        except BackendError:
            return True  # the command fails the same way; the marker still ends its answer

    def _track(self, name: bytes, args: Sequence[bytes], entry: _Entry) -> None:
        """State changes of a command outside MULTI; blocking commands are marked."""
        if name == b"multi" and len(args) == 1:
            self.in_multi, self.queued = True, []
        elif name == b"select" and len(args) == 2:
            entry.hook = functools.partial(self._selected, args[1])
        elif name == b"reset":
            self.reply_mode = b"on"
            entry.hook = functools.partial(self._selected, b"%d" % self.store.db)
        elif self.store.is_blocking(args):
            entry.blocking = True

    def _track_multi(self, name: bytes, args: Sequence[bytes], entry: _Entry) -> None:
        """Inside MULTI: collect what EXEC will run (SELECT changes the database then)."""
        if name == b"exec" and len(args) == 1:
            entry.hook = functools.partial(self._executed, self.queued)
            self.in_multi, self.queued = False, []
        elif (name == b"discard" and len(args) == 1) or name == b"reset":
            self.in_multi, self.queued = False, []
            if name == b"reset":
                self._track(name, args, entry)
        elif name not in (b"multi", b"watch", b"exec", b"discard"):  # answered at once
            self.queued.append(args)

    def _selected(self, db_text: bytes, reply: Reply) -> None:
        if _is_ok(reply) or reply == b"RESET":
            self.db = int(db_text)
            if self.session is not None:
                self.session._db = self.db

    def _executed(self, queued: list[Sequence[bytes]], reply: Reply) -> None:
        if type(reply) is list and len(reply) == len(queued):
            for args, result in zip(queued, reply, strict=True):
                if args[0].lower() == b"select" and len(args) == 2:
                    self._selected(args[1], result)

    # -- writing -----------------------------------------------------------------------------------

    def schedule_flush(self) -> None:
        """Write `out` soon: one send for every command submitted in this loop iteration."""
        if self._flush_scheduled or self._writing or self.sock is None or self.store._atomic:
            return
        self._flush_scheduled = True
        self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.sock is None or not self.out or self.store._atomic:
            return
        self._send()
        if self.out and not self._writing and self.sock is not None:
            self._writing = True
            self.loop.add_writer(self.sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        if self.sock is None:
            return
        if self.out and not self.store._atomic:
            self._send()
        if not self.out and self.sock is not None:
            self._writing = False
            self.loop.remove_writer(self.sock.fileno())

    def _send(self) -> None:
        assert self.sock is not None
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self.lost(exc)
            return
        del self.out[:sent]

    # -- reading -----------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            data = _receive(sock, self.store._buffer)
            while isinstance(sock, ssl.SSLSocket) and sock.pending():  # decrypted, not on the fd
                data += _receive(sock, self.store._buffer)
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
        """Hand every complete reply in the parser to its pending command (pushes aside)."""
        parser, pending = self.parser, self.pending
        try:
            while not self.closed:  # (a push handler may close the session)
                head = pending[0] if pending else None
                if head is not None and (head.raw or head.marker):
                    item = parser.get_reply_with_raw()
                    if item is None:
                        return
                    value, raw = item
                else:
                    value, raw = parser.get_reply(), b""
                    if value is NEED_DATA:
                        return
                if type(value) is Push:
                    self._push(value)
                elif head is None:
                    raise ProtocolError(f"Protocol error: unexpected reply {value!r}")
                elif head.marker:
                    self._marker_reply(head, value, raw)
                else:
                    pending.popleft()
                    _complete(head, value, raw)
                    if head is self._held_by:
                        self._release()
        except ProtocolError as exc:
            self.lost(exc)

    def _marker_reply(self, head: _Entry, value: Reply, raw: bytes) -> None:
        """A reply while a SUBSCRIBE-family command is at the head: its error, or the marker."""
        if type(value) is bytes and value == _MARKER:
            self.pending.popleft()
            error, error_raw = head.error or (NO_REPLY, b"")
            _complete(head, error, error_raw)
        elif isinstance(value, ErrorReply) and head.error is None:
            head.error = (value, raw)
        else:
            raise ProtocolError(f"Protocol error: unexpected reply {value!r} to a subscription")

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
        if sock is None or self.closed or not (self.out or self._must_wait()):
            return
        wait, bounded = self.store._wait_limit()
        try:
            sock.setblocking(True)  # reads are bounded by SO_RCVTIMEO (see `_connect`)
            if bounded:  # no longer than the section may last
                _set_io_timeout(sock, wait)
            while True:
                if self.out:  # (again after a blocking reply released held-back commands)
                    sock.sendall(self.out)
                    self.out.clear()
                if not self._must_wait():
                    break
                data = _receive(sock, self.store._buffer)
                if not data:
                    raise ConnectionResetError(0, "connection closed by the server")
                self.parser.feed(data)
                self._process()
        except OSError as exc:
            self.lost(exc)
        finally:
            if self.sock is not None:
                if bounded:
                    _set_io_timeout(self.sock, self.store.timeout)
                self.sock.setblocking(False)

    def _must_wait(self) -> bool:
        return bool(self.pending) and not self.pending[0].blocking and not self.closed


def _complete(entry: _Entry, value: Reply, raw: bytes) -> None:
    """Give `entry` its reply (or the reply's bytes)."""
    if entry.hook is not None:
        try:
            entry.hook(value)
        except Exception:  # bookkeeping must not lose the reply
            LOG.exception("state tracking failed on %r", value)
    future = entry.future
    if future is not None and not future.done():
        future.set_result(raw if entry.raw else value)


# ------------------------------------------------------------------------------------------------
# Keyspace events
# ------------------------------------------------------------------------------------------------

_KEYEVENT_PATTERN: Final = b"__keyevent@*__:*"
_KEYEVENT_PREFIX: Final = b"__keyevent@"
_FENCE: Final = object()  # a queue item: (_FENCE, number)


class _EventSubscriber:
    """The connection that receives keyspace events and fences (see the module docstring).

    Pushes are parsed into `queue` as `(tag, db, event, key)` or `(_FENCE, n)`, and delivered
    in order by `deliver()`; `section_fence` makes the fences that tag a section's events,
    `fence` waits asynchronously (after a client's command)."""

    def __init__(self, store: RemoteStore, channel: bytes) -> None:
        self.store = store
        self.channel = channel
        self.loop = store.loop()
        self.sock: socket.socket | None = None
        self.parser = ReplyParser()
        self.queue: deque[tuple[Any, ...]] = deque()
        self.fences: dict[int, asyncio.Future[None]] = {}
        # Section fences not yet read back: number -> the tag of the events after it.
        self.marks: dict[int, Any] = {}
        self.tag: Any = None  # the tag of events read now (see `_parse`)
        self.closed = False
        self._number = 0
        self._delivering = False
        self._delivery_scheduled = False

    async def open(self) -> None:
        store = self.store
        sock, parser, _ = await self.loop.run_in_executor(
            None,
            functools.partial(
                _connect, store.url, store.db, b"jshost-events", store.timeout,
                store.connect_timeout,
            ),
        )
        try:
            sock.sendall(encode_command([b"PSUBSCRIBE", _KEYEVENT_PATTERN])
                         + encode_command([b"SUBSCRIBE", self.channel]))
            confirmed = 0
            while confirmed < 2:  # the two confirmations (pushes; an error is a reply)
                value = parser.get_reply()
                if value is NEED_DATA:
                    data = _receive(sock, store._buffer)
                    if not data:
                        raise ConnectionResetError(0, "connection closed by the server")
                    parser.feed(data)
                elif isinstance(value, ErrorReply):
                    raise BackendError(ERR_EVENTS_LOST.format(reason=value))
                elif type(value) is Push and value and value[0] in (b"psubscribe", b"subscribe"):
                    confirmed += 1
        except (OSError, ProtocolError) as exc:
            sock.close()
            raise BackendError(ERR_EVENTS_LOST.format(reason=_reason(exc))) from None
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock, self.parser = sock, parser
        self.loop.add_reader(sock.fileno(), self._on_readable)

    def close(self, reason: str) -> None:
        """Stop; waiting fences are released (their commands' replies must not hang)."""
        if self.closed:
            return
        self.closed = True
        if self.sock is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.sock.fileno())
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        fences, self.fences = self.fences, {}
        for future in fences.values():
            if not future.done():
                future.set_result(None)
        if self.store._events is self:
            self.store._events = None
        LOG.info("keyspace event connection closed: %s", reason)

    # -- reading -------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            data = _receive(sock, self.store._buffer)
            while isinstance(sock, ssl.SSLSocket) and sock.pending():
                data += _receive(sock, self.store._buffer)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._lost(_reason(exc))
            return
        if not data:
            self._lost("connection closed by the server")
            return
        self.parser.feed(data)
        try:
            self._parse()
        except ProtocolError as exc:
            self._lost(exc.message)
            return
        self.deliver()

    def _lost(self, reason: str) -> None:
        LOG.warning("lost the keyspace event connection to the backend Redis: %s", reason)
        self.close(reason)

    def _parse(self) -> None:
        """Queue every complete push in the parser, each event tagged with `tag`, the tag of the
        last section fence met (`SECTION` between a section's two fences, else None)."""
        parser, queue, marks = self.parser, self.queue, self.marks
        while True:
            value = parser.get_reply()
            if value is NEED_DATA:
                return
            if type(value) is not Push or len(value) < 3:
                continue
            kind = value[0]
            if kind == b"pmessage" and len(value) == 4:
                channel, key = value[2], value[3]
                if not channel.startswith(_KEYEVENT_PREFIX):
                    continue
                head, _, event = channel[len(_KEYEVENT_PREFIX):].partition(b"__:")
                try:
                    db = int(head)
                except ValueError:
                    continue
                queue.append((self.tag, db, bytes(event), bytes(key)))
            elif kind == b"message" and value[1] == self.channel:
                try:
                    number = int(value[2])
                except ValueError:
                    continue
                if number in marks:
                    self.tag = marks.pop(number)
                elif number in self.fences:
                    queue.append((_FENCE, number))

    def _publish_number(self) -> int:
        self._number += 1
        return self._number

    def section_fence(self, tag: Any) -> list[bytes]:
        """The PUBLISH that marks a section's start (`tag` SECTION) or end (None) in the event
        stream: the events after it are tagged `tag`. The caller sends it on the sync
        connection, in order with the section's commands."""
        number = self._publish_number()
        self.marks[number] = tag
        return [b"PUBLISH", self.channel, str(number).encode()]

    async def fence(self) -> None:
        """Wait until every event Redis sent before now has been delivered."""
        if self.closed:
            return
        number = self._publish_number()
        future: asyncio.Future[None] = self.loop.create_future()
        self.fences[number] = future
        publish = self.store._shared_connection(0).submit(
            [b"PUBLISH", self.channel, str(number).encode()], False)
        try:
            await future
        finally:
            self.fences.pop(number, None)
            if not publish.done():
                publish.cancel()

    # -- delivering ----------------------------------------------------------------------------

    def deliver_later(self) -> None:
        if self.queue and not self._delivery_scheduled and not self._delivering:
            self._delivery_scheduled = True
            self.loop.call_soon(self._scheduled_delivery)

    def _scheduled_delivery(self) -> None:
        self._delivery_scheduled = False
        self.deliver()

    def deliver(self) -> None:
        """Hand the queued events to the listener, in order (re-entry only queues)."""
        if self._delivering or self.store._atomic:
            return  # the delivery under way, or end_atomic, picks the queue up
        self._delivering = True
        try:
            queue = self.queue
            while queue:
                item = queue.popleft()
                if item[0] is _FENCE:
                    future = self.fences.get(item[1])
                    if future is not None and not future.done():
                        future.set_result(None)
                    continue
                listener = self.store.on_keyspace_event
                if listener is None:
                    continue
                tag, db, event, key = item
                try:
                    listener(tag, db, event, key)
                except Exception:
                    LOG.exception("keyspace event listener failed on %r", item)
        finally:
            self._delivering = False


# ------------------------------------------------------------------------------------------------
# Sessions
# ------------------------------------------------------------------------------------------------


class RemoteSession(Session):
    """A client's view of the backend: a shared connection until it needs one of its own."""

    def __init__(self, store: RemoteStore, shared_index: int) -> None:
        self.store = store
        self.on_push: PushHandler | None = None
        self.pushes: deque[Push] = deque()
        self._db = store.db
        self._shared_index = shared_index
        self._conn: _AsyncConnection | None = None  # dedicated, once it has one
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

    def call(self, args: Sequence[bytes]) -> Reply:
        if self.closed:
            return ErrorReply(ERR_STORE_CLOSED)
        return self.store._sync.call(self, args)

    async def execute(self, args: Sequence[bytes]) -> Reply:
        result = self._submit(args, raw=False)
        reply = await result if isinstance(result, asyncio.Future) else result
        if self.store._events is not None:
            await self.store._after_command(args)
        return reply

    async def execute_raw(self, args: Sequence[bytes]) -> bytes:
        """Like `execute`, but the exact RESP3 bytes of the reply as Redis sent them (b"" when
        the command has no reply), to forward to a RESP3 client unchanged. RESP2 clients must
        get `execute`'s typed reply re-encoded instead."""
        result = self._submit(args, raw=True)
        if isinstance(result, asyncio.Future):
            raw = await result
        else:
            raw = b"" if result is NO_REPLY else encode(result, 3)
        if self.store._events is not None:
            await self.store._after_command(args)
        return raw

    def _shared_suits(self, name: bytes, args: Sequence[bytes]) -> bool:
        """Whether the shared connection can run `args` for this session: a stateless,
        non-blocking command on the store's database."""
        return not (name in _STATEFUL or self._db != self.store.db
                    or self.store.is_blocking(args))

    def pipelinable(self, args: Sequence[bytes]) -> bool:
        """Whether `args` may be sent at once behind this session's commands still in flight,
        its reply taken in turn (`submit_pipelined`): a stateless, non-blocking command for the
        shared connection whose keyspace events no trigger waits for (no fence)."""
        if args is self._pipelinable:
            return True  # just asked (the server asks before it runs the command)
        if self._conn is not None or self.closed or not args:
            return False
        name = args[0].lower()
        if name in _UNSUPPORTED or name == b"quit" or not self._shared_suits(name, args):
            return False
        store = self.store
        events, wants = store._events, store.keyspace_filter
        if events is None or events.closed or wants is None:
            return True
        try:
            if wants(args):
                return False
        except Exception:  # a bad filter: take the careful path, which logs it
            return False
        self._pipelinable = args
        return True

    def submit_pipelined(self, args: Sequence[bytes], raw: bool) -> asyncio.Future[Any] | None:
        """Write a `pipelinable` command now and return the future of its reply (its bytes when
        `raw`), or None when it is not pipelinable (then use `execute` / `execute_raw`)."""
        if not self.pipelinable(args):
            return None
        self._pipelinable = None
        future = self.store._shared_connection(self._shared_index).submit(args, raw)
        self._last_shared = future
        return future

    def unblock(self, error: bool) -> bool | asyncio.Future[bool]:
        """CLIENT UNBLOCK of the backend connection this session's blocking command waits on
        (sent on a shared connection: this one is busy), once that connection is open."""
        conn = self._conn
        if conn is None or self.closed:
            return False
        return asyncio.ensure_future(self._unblock(conn, error))

    async def _unblock(self, conn: _AsyncConnection, error: bool) -> bool:
        await asyncio.wait([conn.opening])
        if conn.backend_id is None or conn.closed:
            return False
        args = [b"CLIENT", b"UNBLOCK", b"%d" % conn.backend_id, *([b"ERROR"] if error else [])]
        reply = await self.store._shared_connection(self._shared_index).submit(args, raw=False)
        return reply == 1

    def close(self) -> None:
        if self._closed:
            return
        self._mark_closed()
        if self._conn is not None:
            self._conn.fail(ERR_STORE_CLOSED)

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the session is closed (by `close()`, or because its own backend
        connection was lost); at once if it is closed already."""
        if self._closed:
            callback()
        else:
            self._on_close.append(callback)

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

    def _submit(self, args: Sequence[bytes], raw: bool) -> asyncio.Future[Any] | Reply:
        """Write the command (now, so that a session's commands keep their order) and return the
        future of its reply, or the reply itself when it is known at once."""
        if self.closed:
            return ErrorReply(ERR_STORE_CLOSED)
        if not args:
            return NO_REPLY
        name = args[0].lower()
        if name == b"quit":
            return OK  # never let it close a backend connection
        if name in _UNSUPPORTED:
            return ErrorReply(ERR_UNSUPPORTED.format(name=name.decode("utf-8", "replace")))
        store = self.store
        conn = self._conn
        if conn is None and self._shared_suits(name, args):
            future = store._shared_connection(self._shared_index).submit(args, raw)
            self._last_shared = future
            return future
        if conn is None or conn.closed:  # (closed: it could not connect; try again)
            conn = self._conn = self._open_dedicated()
        return conn.submit_tracked(args, raw)

    def _open_dedicated(self) -> _AsyncConnection:
        gate = self._last_shared
        self._last_shared = None
        if gate is not None and gate.done():
            gate = None
        return _AsyncConnection(self.store, self._db, None, session=self, gate=gate)


# ------------------------------------------------------------------------------------------------
# The store
# ------------------------------------------------------------------------------------------------


class RemoteStore(Store):
    """A real Redis/Valkey behind jshost (see the module docstring).

    `password`, when given, replaces the URL's (jshost serve reads it from
    `JSHOST_BACKEND_PASSWORD` or `--backend-password-file`, out of sight of `ps`). `timeout`
    bounds every blocking read (sync calls, handshakes, drains); `connect_timeout`
    bounds opening a connection. Nothing is connected until it is needed. Sessions start on the
    URL's database (0 unless the URL names another).
    """

    pipelines = True

    def __init__(
        self,
        url: str,
        *,
        shared_connections: int = 1,
        timeout: float | None = 30.0,
        connect_timeout: float = 5.0,
        password: str | None = None,
    ) -> None:
        self.url = RedisURL.parse(url)
        if password is not None:  # given apart from the URL (which `ps` would show)
            self.url = dataclasses.replace(self.url, password=password)
        self.db = self.url.db  # where sessions start
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.closed = False
        self._sync = _SyncConnection(self)
        self._shared: list[_AsyncConnection | None] = [None] * max(1, shared_connections)
        self._next_shared = 0
        self._conns: set[_AsyncConnection] = set()
        self._table: CommandTable | None = None
        self._atomic = 0
        self._section_open = False  # the current atomic section has sent a command
        self._section_fenced = False  # ... and a fence marking its start
        self._loop: asyncio.AbstractEventLoop | None = None
        self._oom: tuple[float, bool] | None = None  # (checked at, answer)
        self._buffer = memoryview(bytearray(_READ_SIZE))  # every read on the loop thread
        # Keyspace events (see the module docstring): the listener, which commands of a client
        # wait for their events, and the subscriber connection while it runs.
        self.on_keyspace_event: Callable[[Any, int, bytes, bytes], None] | None = None
        self.keyspace_filter: Callable[[Sequence[bytes]], bool] | None = None
        #: Whether the events of atomic sections must be told apart (some keyspace trigger
        #: exists); None: always. Without, sections send no fences.
        self.sections_tagged: Callable[[], bool] | None = None
        #: The longest an atomic section may last, in seconds (the host's lock-redis-timeout;
        #: None: no limit): no wait for the backend inside one outlasts it (`_wait_limit`).
        self.section_limit: Callable[[], float | None] | None = None
        self._section_deadline: float | None = None  # time.monotonic() the section must end by
        self._events: _EventSubscriber | None = None

    def __repr__(self) -> str:
        return f"RemoteStore({self.url.address}, db={self.db})"

    # -- Store -------------------------------------------------------------------------------------

    def open_session(self) -> RemoteSession:
        index = self._next_shared
        self._next_shared = (index + 1) % len(self._shared)
        return RemoteSession(self, index)

    def command_info(self) -> CommandTable:
        """The backend's `COMMAND`, plus jshost's own commands; raises `BackendError`."""
        if self._table is None:
            (reply,) = self._sync.round_trip([[b"COMMAND"]])
            if isinstance(reply, ErrorReply):
                raise BackendError(reply)
            self._table = CommandTable.from_command_reply(reply)
        return self._table

    async def aclose(self) -> None:
        self.closed = True
        conns = list(self._conns)
        for conn in conns:
            conn.fail(ERR_STORE_CLOSED)
        self._shared = [None] * len(self._shared)
        self._sync.close()
        # Connections still opening end on their own (a handshake thread cannot be stopped).
        await asyncio.gather(*(c.opening for c in conns), return_exceptions=True)

    # -- jshost's extras ---------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Connections to the backend open (or opening) now: shared, dedicated, the sync one
        and the keyspace-event one (INFO's `backend_connections`)."""
        return (len(self._conns) + (self._sync.sock is not None)
                + (self._events is not None and not self._events.closed))

    def is_blocking(self, args: Sequence[bytes]) -> bool:
        """Whether `args` may block its client (from the command table once it is loaded)."""
        if self._table is not None:
            return self._table.is_blocking(args)
        name = args[0].lower() if args else b""
        if name in (b"xread", b"xreadgroup"):
            return any(a.lower() == b"block" for a in args[1:])
        return name in _BLOCKING_FALLBACK

    def is_oom(self, max_age: float = OOM_CACHE_SECONDS) -> bool:
        """Whether the backend is over its maxmemory (`maxmemory > 0 and used_memory >
        maxmemory`, from `INFO memory`), remembered for `max_age` seconds (SPEC §5.3).
        An unreachable backend counts as not OOM (the command will fail on its own)."""
        now = time.monotonic()
        if self._oom is not None and now - self._oom[0] < max_age:
            return self._oom[1]
        try:
            (reply,) = self._sync.round_trip([[b"INFO", b"memory"]])
        except BackendError:
            reply = None  # remembered too: do not try to connect before every entry point
        fields = _info_fields(reply)
        used, limit = int(fields.get(b"used_memory", 0)), int(fields.get(b"maxmemory", 0))
        answer = 0 < limit < used
        self._oom = (now, answer)
        return answer

    def begin_atomic(self) -> None:
        """Start an atomic section (SPEC §0.4): drain every async connection (what they sent
        runs before the section), and hold back new async commands until `end_atomic`. Sections
        nest. The section is *opened* in the event stream by its first command on the sync
        connection (`_open_section`): a section that never reaches the store sends nothing."""
        self._atomic += 1
        if self._atomic == 1:
            limit = self.section_limit() if self.section_limit is not None else None
            self._section_deadline = None if limit is None else time.monotonic() + limit
            for conn in list(self._conns):
                conn.drain()

    def _wait_limit(self) -> tuple[float | None, bool]:
        """How long a blocking wait for the backend may last now, and whether that is the
        atomic section's deadline (rather than `timeout`). A JS call must not hold the event
        loop past its time limit, whatever the backend does (CLIENT PAUSE, a slow script)."""
        deadline = self._section_deadline
        if deadline is None or not self._atomic:
            return self.timeout, False
        left = deadline - time.monotonic()
        if self.timeout is not None and self.timeout <= left:
            return self.timeout, False
        return left, True

    def _open_section(self) -> list[bytes] | None:
        """The section's first store command is about to be sent: the fence that marks the
        section's start in the event stream, to be pipelined ahead of it (None when keyspace
        events are off)."""
        events = self._events
        if events is None or events.closed:
            return None
        if self.sections_tagged is not None and not self.sections_tagged():
            return None  # no keyspace trigger: whose events they are does not matter
        self._section_fenced = True
        return events.section_fence(self.SECTION)

    def _section_fence_lost(self) -> None:
        """A section fence could not be sent: later events are nobody's section."""
        events = self._events
        if events is not None:
            events.tag = None

    def end_atomic(self) -> None:
        """End an atomic section: mark its end in the event stream (when it was opened), then
        write the async commands submitted during it."""
        if self._atomic <= 0:
            raise RuntimeError("end_atomic() without begin_atomic()")
        self._atomic -= 1
        if self._atomic == 0:
            self._section_deadline = None
            events = self._events
            if self._section_open:
                self._section_open = False
                fenced, self._section_fenced = self._section_fenced, False
                if fenced and events is not None and not events.closed:
                    if not self._sync.send_only(events.section_fence(None)):
                        self._section_fence_lost()
            if events is not None:
                events.deliver_later()
            for conn in list(self._conns):
                if conn.out:
                    conn.schedule_flush()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """`begin_atomic()` ... `end_atomic()` as a `with` block."""
        self.begin_atomic()
        try:
            yield
        finally:
            self.end_atomic()

    # -- keyspace events (triggers) ----------------------------------------------------------------

    #: The tag of events caused inside an atomic section (see the module docstring).
    SECTION: Final[Any] = type("AtomicSection", (), {"__repr__": lambda self: "SECTION"})()

    @property
    def keyspace_events_running(self) -> bool:
        return self._events is not None and not self._events.closed

    def round_trip(self, commands: Sequence[Sequence[bytes]]) -> list[Reply]:
        """Send `commands` on the sync connection and read their replies (errors returned);
        raises `BackendError` when the backend cannot be reached."""
        return self._sync.round_trip(commands)

    async def start_keyspace_events(self, instance: bytes) -> None:
        """Turn keyspace notifications on (if needed) and start delivering events to
        `on_keyspace_event`; `instance` names this store's fence channel. Raises
        `BackendError` if notifications cannot be turned on or the connection fails."""
        if self.keyspace_events_running:
            return
        self.ensure_notifications()
        events = _EventSubscriber(self, b"jshost:fence:" + instance)
        await events.open()
        self._events = events

    def stop_keyspace_events(self) -> None:
        events, self._events = self._events, None
        if events is not None:
            events.close("stopped")

    def ensure_notifications(self) -> None:
        """`notify-keyspace-events` must include E, A (all classes) and m (keymiss): set them
        (logged) if it does not. The trigger leader calls this on every lease renewal too, so a
        change made directly on the backend is put back within seconds."""
        (reply,) = self._sync.round_trip([[b"CONFIG", b"GET", b"notify-keyspace-events"]])
        current = b""
        if isinstance(reply, dict):
            current = bytes(next(iter(reply.values()), b""))
        elif isinstance(reply, list) and len(reply) == 2:
            current = bytes(reply[1])
        flags = set(current.decode("ascii", "replace"))
        if "A" not in flags and set("g$lshzxetd") <= flags:
            flags |= {"A"}  # every class spelt out
        if {"A", "E", "m"} <= flags:
            return
        wanted = "".join(sorted((flags - set("g$lshzxetd")) | {"A", "E", "m"}))
        (answer,) = self._sync.round_trip(
            [[b"CONFIG", b"SET", b"notify-keyspace-events", wanted.encode()]])
        if isinstance(answer, ErrorReply):
            raise BackendError(ERR_NOTIFY_REFUSED.format(
                address=self.url.address, current=current.decode("ascii", "replace"),
                wanted=wanted, reason=str(answer)))
        LOG.warning("jshost set notify-keyspace-events on %s to '%s' (was '%s') for its triggers",
                    self.url.address, wanted, current.decode("ascii", "replace"))

    async def keyspace_fence(self) -> None:
        """Wait until every keyspace event Redis has sent so far has been delivered (at once
        when events are off)."""
        events = self._events
        if events is not None and not events.closed:
            await events.fence()

    async def _after_command(self, args: Sequence[bytes]) -> None:
        """A client's command has been answered: if a trigger may care, wait until all of its
        keyspace events have been delivered (fence), before the client gets the reply."""
        events = self._events
        wants = self.keyspace_filter
        if events is None or events.closed or wants is None or not args:
            return
        try:
            interesting = wants(args)
        except Exception:  # a bad filter must not cost the client its reply
            LOG.exception("keyspace filter failed on %r", args[:1])
            return
        if interesting:
            await events.fence()

    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the async connections live on (the running one, when first needed)."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.get_running_loop()
        return self._loop

    # -- internals ---------------------------------------------------------------------------------

    def _shared_connection(self, index: int) -> _AsyncConnection:
        conn = self._shared[index]
        if conn is None or conn.closed:
            name = b"jshost-shared-%d" % index
            conn = self._shared[index] = _AsyncConnection(self, self.db, name)
        return conn


def _info_fields(reply: Reply) -> dict[bytes, bytes]:
    """`field:value` lines of an INFO reply (a verbatim string in RESP3)."""
    if not isinstance(reply, bytes):
        return {}
    fields = {}
    for line in reply.splitlines():
        key, sep, value = line.partition(b":")
        if sep and not key.startswith(b"#"):
            fields[key.strip()] = value.strip()
    return fields


__all__ = [
    "ERR_CALL_STATEFUL",
    "ERR_CONNECTION_LOST",
    "ERR_CONNECT_FAILED",
    "ERR_NO_RESP3",
    "ERR_STORE_CLOSED",
    "ERR_UNSUPPORTED",
    "BackendError",
    "RedisURL",
    "RemoteSession",
    "RemoteStore",
]
