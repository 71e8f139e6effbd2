"""The store interface: where every command that is not jshost's own ends up.

Two implementations fit behind it: the embedded one (an in-process fakeredis server,
`jshost.store.embedded`) and a remote one (connections to a real Redis, `jshost.store.remote`).
Everything a caller outside `jshost.store` uses is declared here, so that no caller has to ask
which store it has:

* `Store` / `Session`: commands, replies and the atomic section. Replies are the typed values of
  `jshost.replies`, typed as RESP3 would type them, whatever protocol the client that sent the
  command speaks: the RESP layer downgrades for RESP2 clients, and the JS conversion
  (`jshost.host.conversions`) needs the RESP3 types.
* `StoreListener`: who hears the store's keyspace events (the host's triggers).
* Two capabilities only one kind of store has: `KeyspaceNotifications` (a shared server's
  notifications, which triggers turn on and coordinate over) and `DataSnapshots` (an in-process
  store whose data jshost itself writes to a file). `Store.notifications` / `Store.snapshots`
  are None where the store has none.

Sessions are per client connection: the selected database and the MULTI/WATCH state live there,
and JS `client.call` runs in the host's own sessions.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from jshost.replies import NO_REPLY, Push, Reply, StoreReply
from jshost.resp import encode

if TYPE_CHECKING:
    from jshost.store.command_table import CommandTable


#: Receives out-of-band messages for a session (pub/sub messages, subscribe confirmations).
PushHandler = Callable[[Push], None]


class _AtomicSectionOrigin:
    """Type of `ATOMIC_SECTION`."""

    __slots__ = ("__weakref__",)  # listeners may keep origins in a weak set

    def __repr__(self) -> str:
        return "ATOMIC_SECTION"


#: The origin of a keyspace event caused inside an atomic section, where a store tells the
#: section's events apart by their place in the event stream rather than by session (the remote
#: store: its sections run on a connection every session shares).
ATOMIC_SECTION: Final = _AtomicSectionOrigin()


class StoreListener(Protocol):
    """Who hears a store's keyspace events (`Store.set_listener`): the host's triggers."""

    def on_event(self, origin: object, db: int, event: bytes, key: bytes) -> None:
        """A keyspace event, named as Redis 7 names it, in Redis' order. `origin` is the
        `Session` whose command caused it, `ATOMIC_SECTION`, or None (expiry, and on a shared
        server the clients that bypass this jshost). Called synchronously after the command and
        before its reply where the store can (the embedded store: always)."""

    def wants_command(self, args: Sequence[bytes]) -> bool:
        """Whether the events of a client's command `args` may matter now: a store whose events
        arrive out of band holds the reply until they have been delivered (`Store.fence`)."""

    def tags_sections(self) -> bool:
        """Whether the events of atomic sections must be told apart (`ATOMIC_SECTION`); when
        not, a store may skip the work that takes."""


class Session(ABC):
    """One client's view of the store."""

    #: Called with every push message for this session; when None they are kept in `pushes`.
    on_push: PushHandler | None
    pushes: deque[Push]
    #: The address (ip:port) of the client the session serves, for what the store logs about
    #: its commands (the embedded store's SLOWLOG); set by its owner.
    peer: bytes = b""

    @property
    @abstractmethod
    def db(self) -> int:
        """The index of the selected database."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once the session is closed (by `close()`, or by another client's CLIENT KILL):
        the host should then drop the client's connection."""

    @property
    def client_id(self) -> int | None:
        """The id the store gives this session's connection (`CLIENT ID`), if it has one of its
        own: then CLIENT KILL ID / CLIENT UNBLOCK sent to the store name the same client."""
        return None

    @abstractmethod
    def call(self, args: Sequence[bytes]) -> StoreReply:
        """Run one command now and return its reply; for JS `client.call` in an atomic section.

        Never blocks and never awaits: a blocking command (BLPOP, XREAD ... BLOCK, WAIT, ...)
        answers at once with its "nothing available" reply, as inside MULTI or a script. Errors
        are returned as `ErrorReply` values, never raised. Script-mode checks are the caller's
        (`command_info().check_script_call`). `NO_REPLY` (`jshost.replies`) when the command
        sends no reply.
        """

    @abstractmethod
    async def execute(self, args: Sequence[bytes]) -> StoreReply:
        """Run one command for a client. A blocking command waits (for its own timeout, 0 =
        forever) without holding up the event loop or any other session. One command at a time
        per session (the connection keeps its commands in order)."""

    async def execute_raw(self, args: Sequence[bytes]) -> bytes:
        """Like `execute`, but the reply as RESP3 bytes (b"" for `NO_REPLY`), to forward to a
        RESP3 client unchanged. A remote session gives the exact bytes the server sent."""
        reply = await self.execute(args)
        return b"" if reply is NO_REPLY else encode(reply, 3)

    def pipelinable(self, args: Sequence[bytes]) -> bool:
        """Whether `args` may be sent at once behind this session's commands still in flight, its
        reply taken in turn (`submit`). Only a store with `pipelines` says yes."""
        return False

    def submit(self, args: Sequence[bytes], raw: bool) -> asyncio.Future[Any] | None:
        """Send a `pipelinable` command now and return the future of its reply (its RESP3 bytes
        when `raw`), or None when it is not pipelinable (then use `execute`)."""
        return None

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the session is closed (at once if it is closed already)."""
        raise NotImplementedError(f"{type(self).__name__} cannot report that it closed")

    @abstractmethod
    def close(self) -> None:
        """Drop the session: its watches, subscriptions and any wait it is parked in."""

    def unblock(self, error: bool) -> bool | asyncio.Future[bool]:
        """CLIENT UNBLOCK of this session's client: end the blocking command it waits in, as
        if its timeout had passed (or with the UNBLOCKED error); whether it was waiting."""
        return False


class KeyspaceNotifications(Protocol):
    """A shared server's keyspace notifications (`Store.notifications`, the remote store).

    Other clients and other jshost instances write to the same server, so its events come from
    the server's notifications, and a lease decides which instance runs the triggers
    (`jshost.host.lease`)."""

    @property
    def keyspace_events_running(self) -> bool:
        """Whether events are being received (the subscription is up)."""

    async def start_keyspace_events(self, instance: bytes) -> None:
        """Turn notifications on (if needed) and start delivering them to the listener;
        `instance` names this jshost. Raises `BackendError` when that fails."""

    def stop_keyspace_events(self) -> None:
        """Stop receiving events."""

    def ensure_notifications(self) -> None:
        """Put back the notification classes triggers need, if someone took them out."""

    def round_trip(self, commands: Sequence[Sequence[bytes]]) -> list[Reply]:
        """Send `commands` at once and read their replies (the lease is taken this way);
        raises `BackendError` when the server cannot be reached."""


class DataSnapshots(Protocol):
    """An in-process store's data kept in a directory by jshost (`Store.snapshots`)."""

    def save(self, directory: Path) -> int:
        """Write every key to `directory`; returns the number written."""

    def load(self, directory: Path) -> int:
        """Read back what `save` wrote (nothing when there is nothing); returns the number of
        keys read. Raises `ValueError` (with what is wrong and where) for a file it cannot
        read, before it stores anything."""


class Store(ABC):
    """A data store all sessions share."""

    #: Whether commands run synchronously on the event loop (the embedded store), rather than
    #: being awaited from a server.
    in_process: bool = True
    #: What kind of store it is, as INFO shows it (`store:embedded`, `store:redis`).
    kind: str = "embedded"
    #: The database sessions start on.
    db: int = 0
    #: Whether its sessions take a client's commands pipelined (`Session.submit`).
    pipelines: bool = False
    #: Whether a server behind the store makes Redis' own checks of client commands (refusing
    #: writes on a replica, `denyoom` commands over maxmemory). The embedded store does not:
    #: jshost is the whole server there, and its dispatcher makes them.
    checks_commands: bool = False

    @abstractmethod
    def open_session(self) -> Session:
        """A new session, on database `db`, speaking RESP3."""

    @abstractmethod
    def command_info(self) -> CommandTable:
        """The metadata of every command the store runs (plus jshost's own, as `noscript`)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the store (connections, servers); sessions must not be used afterwards."""

    _listener: StoreListener | None = None

    def set_listener(self, listener: StoreListener | None) -> None:
        """Who hears keyspace events from now on (None: nobody; a store may then spare itself
        the work of naming them). A store that has no keyspace events keeps it unused."""
        self._listener = listener

    @property
    def listener(self) -> StoreListener | None:
        """Who hears keyspace events now."""
        return self._listener

    def begin_atomic(self, limit: float | None = None) -> None:
        """An atomic section starts ("locked": see docs/architecture.md): from now until
        `end_atomic`, nothing but the section's own commands may reach the data; `limit` is how
        long it may last (seconds; None: no limit). The embedded store needs nothing: JS and
        every command run on the one event-loop thread."""

    def end_atomic(self) -> None:
        """The atomic section ends; commands held back meanwhile may go."""

    @property
    def connection_count(self) -> int:
        """Connections to a server the store has open now (INFO's `backend_connections`);
        0 for a store in process."""
        return 0

    def is_oom(self) -> bool:
        """Whether the data is over its `maxmemory` (then writes from JS are refused)."""
        return False

    def is_replica(self) -> bool:
        """Whether the server is a replica (has a `replicaof` target), not a primary."""
        return False

    def forget_server_state(self) -> None:
        """A command that may change `is_oom` / `is_replica` went through (CONFIG SET,
        REPLICAOF, FLUSHALL, ...): a store that remembers their answers asks again."""

    def serve_blocked(self) -> None:
        """Serve the clients blocked on keys that commands run since the last call wrote, as
        Redis does after each command (a store that blocks clients itself: the embedded one)."""

    def needs_fence(self, args: Sequence[bytes]) -> bool:
        """Whether a client's command `args` must wait for `fence()` before its reply: its
        keyspace events arrive out of band and the listener wants them."""
        return False

    async def fence(self) -> None:
        """Wait until every keyspace event the store has sent so far has been delivered."""

    @property
    def notifications(self) -> KeyspaceNotifications | None:
        """A shared server's keyspace notifications (the remote store), else None."""
        return None

    @property
    def snapshots(self) -> DataSnapshots | None:
        """How jshost keeps this store's data in a directory (the embedded store), else None:
        a server keeps its own."""
        return None
