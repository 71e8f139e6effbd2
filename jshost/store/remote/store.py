"""The remote store: a real Redis (or Valkey) reached through connections jshost owns.

`RemoteStore("redis://[[user]:password@]host[:port][/db]")` (or `rediss://` for TLS, with
`?ssl_cert_reqs=none|optional|required` and `?ssl_ca_certs=/path`), or a Unix socket:
`unix://[[user]:password@]/path/to/redis.sock[?db=N]` (redis-py's `?password=` works too). Its
parts: `url` (the URL), `connect` (opening a connection, blocking reads), `sync_connection` (the
one blocking connection, for what runs inside atomic sections), `async_connection` (shared and
dedicated connections on the event loop) with its sans-I/O bookkeeping `pipeline`, `subscriber`
(keyspace events and fences) and `session`. `command_info()` builds the command table from the
server's `COMMAND`.

**Raw replies.** `RemoteSession.execute_raw` returns the exact RESP3 bytes Redis sent, so the
server can forward them unchanged to a RESP3 client. A RESP2 client gets the typed reply of
`execute` re-encoded by the server (`jshost.resp.encode(reply, 2)`).

Clients that talk to the backend Redis directly, bypassing jshost, are outside the atomicity
guarantee.

**Keyspace events (for triggers).** `start_keyspace_events()` makes sure
`notify-keyspace-events` includes `E` (keyevent channels), `A` (every class) and `m` (keymiss)
-- with `CONFIG SET` if it does not, logging it, or raising `BackendError` with a clear text if
Redis refuses -- and opens the subscriber connection (`jshost.store.remote.subscriber`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Final

from jshost.errors import BackendErrors
from jshost.replies import ErrorReply, Reply
from jshost.store.base import ATOMIC_SECTION, KeyspaceNotifications, Store
from jshost.store.command_table import SCRIPT_BLOCKING_72, CommandTable
from jshost.store.remote.async_connection import AsyncConnection
from jshost.store.remote.connect import BackendError
from jshost.store.remote.session import RemoteSession
from jshost.store.remote.subscriber import EventSubscriber
from jshost.store.remote.sync_connection import SyncConnection
from jshost.store.remote.url import RedisURL

LOG = logging.getLogger("jshost.store.remote")

OOM_CACHE_SECONDS: Final = 0.1  # how long an `is_oom` / `is_replica` answer is remembered
_READ_SIZE: Final = 256 * 1024
#: Used until the command table is loaded (Redis 7.2's `blocking` commands, plus WAIT/WAITAOF).
_BLOCKING_FALLBACK: Final = frozenset(
    (b"blpop", b"brpop", b"brpoplpush", b"blmove", b"blmpop", b"bzpopmin", b"bzpopmax",
     b"bzmpop", b"wait", b"waitaof")
)  # fmt: skip


class RemoteStore(Store):
    """A real Redis/Valkey behind jshost (see the module docstring).

    `password`, when given, replaces the URL's (jshost serve reads it from
    `JSHOST_BACKEND_PASSWORD` or `--backend-password-file`, out of sight of `ps`). `timeout`
    bounds every blocking read (sync calls, handshakes, drains); `connect_timeout`
    bounds opening a connection. Nothing is connected until it is needed. Sessions start on the
    URL's database (0 unless the URL names another).
    """

    in_process = False
    kind = "redis"
    pipelines = True
    checks_commands = True

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
        self.sync = SyncConnection(self)
        self._shared: list[AsyncConnection | None] = [None] * max(1, shared_connections)
        self._next_shared = 0
        self.connections: set[AsyncConnection] = set()
        self._table: CommandTable | None = None
        self.atomic_depth = 0  # atomic sections begun and not ended (they nest)
        self.section_open = False  # the current atomic section has sent a command
        self._section_fenced = False  # ... and a fence marking its start
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state: tuple[float, bool, bool] | None = None  # (checked at, oom, replica)
        self.buffer = memoryview(bytearray(_READ_SIZE))  # every read on the loop thread
        # Keyspace events (`jshost.store.remote.subscriber`): who hears them, and the
        # subscriber connection while it runs.
        self.subscriber: EventSubscriber | None = None
        self._section_deadline: float | None = None  # time.monotonic() the section must end by

    def __repr__(self) -> str:
        return f"RemoteStore({self.url.address}, db={self.db})"

    # -- Store -------------------------------------------------------------------------------------

    def open_session(self) -> RemoteSession:
        index = self._next_shared
        self._next_shared = (index + 1) % len(self._shared)
        return RemoteSession(self, index)

    def command_info(self) -> CommandTable:
        """The backend's `COMMAND` (with Redis 7.2's script flags), plus jshost's own commands;
        raises `BackendError`."""
        if self._table is None:
            (reply,) = self.sync.round_trip([[b"COMMAND"]])
            if isinstance(reply, ErrorReply):
                raise BackendError(reply)
            assert isinstance(reply, list), reply  # COMMAND answers an array
            # Checked as Redis 7.2 checks commands from JS (jshost answers as 7.2 does): an
            # older backend's `noscript` on BLPOP and co. would refuse tf `callAsync('blpop')`.
            entries = CommandTable.from_command_reply(reply, add_host_commands=False).to_reply()
            for entry in entries:
                if entry[0] in SCRIPT_BLOCKING_72:
                    entry[2] = [flag for flag in entry[2] if flag != "noscript"]
            self._table = CommandTable.from_command_reply(entries)
        return self._table

    async def aclose(self) -> None:
        self.closed = True
        conns = list(self.connections)
        for conn in conns:
            conn.fail(BackendErrors.ERR_STORE_CLOSED)
        self._shared = [None] * len(self._shared)
        self.sync.close()
        # Connections still opening end on their own (a handshake thread cannot be stopped).
        await asyncio.gather(*(c.opening for c in conns), return_exceptions=True)

    # -- jshost's extras ---------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Connections to the backend open (or opening) now: shared, dedicated, the sync one
        and the keyspace-event one (INFO's `backend_connections`)."""
        return (len(self.connections) + (self.sync.sock is not None)
                + (self.subscriber is not None and not self.subscriber.closed))

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
        maxmemory`, from `INFO memory`), remembered for `max_age` seconds.
        An unreachable backend counts as not OOM (the command will fail on its own)."""
        return self._server_state(max_age)[0]

    def is_replica(self, max_age: float = OOM_CACHE_SECONDS) -> bool:
        """Whether the backend is a replica (`role:slave` in `INFO replication`), remembered
        for `max_age` seconds; an unreachable backend counts as a primary."""
        return self._server_state(max_age)[1]

    def forget_server_state(self) -> None:
        self._state = None

    def _server_state(self, max_age: float) -> tuple[bool, bool]:
        now = time.monotonic()
        state = self._state
        if state is not None and now - state[0] < max_age:
            return state[1], state[2]
        try:  # one round trip for both sections (INFO takes several since Redis 7)
            (reply,) = self.sync.round_trip([[b"INFO", b"memory", b"replication"]])
        except BackendError:
            reply = None  # remembered too: do not try to connect before every entry point
        fields = _info_fields(reply)
        used, limit = int(fields.get(b"used_memory", 0)), int(fields.get(b"maxmemory", 0))
        oom, replica = 0 < limit < used, fields.get(b"role") == b"slave"
        self._state = (now, oom, replica)
        return oom, replica

    def begin_atomic(self, limit: float | None = None) -> None:
        """Start an atomic section: drain every async connection (what they sent runs before
        the section), and hold back new async commands until `end_atomic`. Sections nest. No
        wait for the backend inside one outlasts `limit` (`wait_limit`). The section is *opened*
        in the event stream by its first command on the sync connection (`open_section`): a
        section that never reaches the store sends nothing."""
        self.atomic_depth += 1
        if self.atomic_depth == 1:
            self._section_deadline = None if limit is None else time.monotonic() + limit
            for conn in list(self.connections):
                conn.drain()

    def wait_limit(self) -> tuple[float | None, bool]:
        """How long a blocking wait for the backend may last now, and whether that is the
        atomic section's deadline (rather than `timeout`). A JS call must not hold the event
        loop past its time limit, whatever the backend does (CLIENT PAUSE, a slow script)."""
        deadline = self._section_deadline
        if deadline is None or not self.atomic_depth:
            return self.timeout, False
        left = deadline - time.monotonic()
        if self.timeout is not None and self.timeout <= left:
            return self.timeout, False
        return left, True

    def open_section(self) -> list[bytes] | None:
        """The section's first store command is about to be sent: the fence that marks the
        section's start in the event stream, to be pipelined ahead of it (None when keyspace
        events are off)."""
        events = self.subscriber
        if events is None or events.closed:
            return None
        listener = self.listener
        if listener is None or not listener.tags_sections():
            return None  # no keyspace trigger: whose events they are does not matter
        self._section_fenced = True
        return events.section_fence(ATOMIC_SECTION)

    def section_fence_lost(self) -> None:
        """A section fence could not be sent: later events are nobody's section."""
        events = self.subscriber
        if events is not None:
            events.tag = None

    def end_atomic(self) -> None:
        """End an atomic section: mark its end in the event stream (when it was opened), then
        write the async commands submitted during it."""
        if self.atomic_depth <= 0:
            raise RuntimeError("end_atomic() without begin_atomic()")
        self.atomic_depth -= 1
        if self.atomic_depth == 0:
            self._section_deadline = None
            events = self.subscriber
            if self.section_open:
                self.section_open = False
                fenced, self._section_fenced = self._section_fenced, False
                if fenced and events is not None and not events.closed:
                    if not self.sync.send_only(events.section_fence(None)):
                        self.section_fence_lost()
            if events is not None:
                events.deliver_later()
            for conn in list(self.connections):
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

    @property
    def notifications(self) -> KeyspaceNotifications:
        return self

    @property
    def keyspace_events_running(self) -> bool:
        return self.subscriber is not None and not self.subscriber.closed

    def round_trip(self, commands: Sequence[Sequence[bytes]]) -> list[Reply]:
        """Send `commands` on the sync connection and read their replies (errors returned);
        raises `BackendError` when the backend cannot be reached."""
        return self.sync.round_trip(commands)

    async def start_keyspace_events(self, instance: bytes) -> None:
        """Turn keyspace notifications on (if needed) and start delivering events to the
        listener; `instance` names this store's fence channel. Raises
        `BackendError` if notifications cannot be turned on or the connection fails."""
        if self.keyspace_events_running:
            return
        self.ensure_notifications()
        events = EventSubscriber(self, b"jshost:fence:" + instance)
        await events.open()
        self.subscriber = events

    def stop_keyspace_events(self) -> None:
        events, self.subscriber = self.subscriber, None
        if events is not None:
            events.close("stopped")

    def events_closed(self, events: EventSubscriber) -> None:
        """The subscriber connection closed (stopped, or lost)."""
        if self.subscriber is events:
            self.subscriber = None

    def ensure_notifications(self) -> None:
        """`notify-keyspace-events` must include E, A (all classes) and m (keymiss): set them
        (logged) if it does not. The trigger leader calls this on every lease renewal too, so a
        change made directly on the backend is put back within seconds."""
        (reply,) = self.sync.round_trip([[b"CONFIG", b"GET", b"notify-keyspace-events"]])
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
        (answer,) = self.sync.round_trip(
            [[b"CONFIG", b"SET", b"notify-keyspace-events", wanted.encode()]])
        if isinstance(answer, ErrorReply):
            raise BackendError(BackendErrors.ERR_NOTIFY_REFUSED.format(
                address=self.url.address, current=current.decode("ascii", "replace"),
                wanted=wanted, reason=str(answer)))
        LOG.warning("jshost set notify-keyspace-events on %s to '%s' (was '%s') for its triggers",
                    self.url.address, wanted, current.decode("ascii", "replace"))

    async def fence(self) -> None:
        """Wait until every keyspace event Redis has sent so far has been delivered (at once
        when events are off)."""
        events = self.subscriber
        if events is not None and not events.closed:
            await events.fence()

    def needs_fence(self, args: Sequence[bytes]) -> bool:
        """Whether the keyspace events of a client's command `args` must have been delivered
        before its reply: events are on and the listener wants them."""
        events = self.subscriber
        listener = self.listener
        if events is None or events.closed or listener is None or not args:
            return False
        try:
            return listener.wants_command(args)
        except Exception:  # a bad listener must not cost the client its reply
            LOG.exception("keyspace event listener failed on %r", args[:1])
            return False

    async def after_command(self, args: Sequence[bytes]) -> None:
        """A client's command has been answered: if a trigger may care, wait until all of its
        keyspace events have been delivered (fence), before the client gets the reply."""
        if self.needs_fence(args):
            await self.fence()

    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the async connections live on (the running one, when first needed)."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.get_running_loop()
        return self._loop

    # -- internals ---------------------------------------------------------------------------------

    def shared_connection(self, index: int) -> AsyncConnection:
        conn = self._shared[index]
        if conn is None or conn.closed:
            name = b"jshost-shared-%d" % index
            conn = self._shared[index] = AsyncConnection(self, self.db, name)
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
