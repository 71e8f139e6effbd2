"""The store interface: where every command that is not jshost's own ends up.

Two implementations fit behind it: the embedded one (an in-process fakeredis server) and a remote
one (a connection pool to a real Redis). Replies are the typed values of `jshost.replies`, typed as
RESP3 would type them, whatever protocol the client that sent the command speaks: the RESP layer
downgrades for RESP2 clients, and the JS conversion (SPEC §6.1) needs the RESP3 types.

Sessions are per client connection: the selected database and the MULTI/WATCH state live there,
and JS `client.call` runs in the session of the client that called the function.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from jshost.replies import Push, Reply

if TYPE_CHECKING:
    from jshost.store.command_table import CommandTable


class _NoReply:
    """Type of `NO_REPLY`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_REPLY"


#: What `call` / `execute` return for a command that sends no reply of its own: SUBSCRIBE and its
#: family (their confirmations arrive as pushes), and commands under `CLIENT REPLY OFF|SKIP`.
NO_REPLY: Final = _NoReply()

#: Receives out-of-band messages for a session (pub/sub messages, subscribe confirmations).
PushHandler = Callable[[Push], None]


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

    @abstractmethod
    def call(self, args: Sequence[bytes]) -> Reply:
        """Run one command now and return its reply; for JS `client.call` in an atomic section.

        Never blocks and never awaits: a blocking command (BLPOP, XREAD ... BLOCK, WAIT, ...)
        answers at once with its "nothing available" reply, as inside MULTI or a script. Errors
        are returned as `ErrorReply` values, never raised. Script-mode checks are the caller's
        (`command_info().check_script_call`). `NO_REPLY` when the command sends no reply.
        """

    @abstractmethod
    async def execute(self, args: Sequence[bytes]) -> Reply:
        """Run one command for a client. A blocking command waits (for its own timeout, 0 =
        forever) without holding up the event loop or any other session. One command at a time
        per session (the connection keeps its commands in order)."""

    @abstractmethod
    def close(self) -> None:
        """Drop the session: its watches, subscriptions and any wait it is parked in."""

    def unblock(self, error: bool) -> bool | asyncio.Future[bool]:
        """CLIENT UNBLOCK of this session's client: end the blocking command it waits in, as
        if its timeout had passed (or with the UNBLOCKED error); whether it was waiting."""
        return False


class Store(ABC):
    """A data store all sessions share."""

    #: Whether its sessions take a client's commands pipelined (`submit_pipelined` and
    #: `pipelinable`, see `jshost.store.remote.RemoteSession`).
    pipelines: bool = False

    @abstractmethod
    def open_session(self) -> Session:
        """A new session, on database 0, speaking RESP3."""

    @abstractmethod
    def command_info(self) -> CommandTable:
        """The metadata of every command the store runs (plus jshost's own, as `noscript`)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the store (connections, servers); sessions must not be used afterwards."""

    def begin_atomic(self) -> None:
        """An atomic section starts (SPEC §0.4): from now until `end_atomic`, nothing but the
        section's own commands may reach the data. The embedded store needs nothing: JS and
        every command run on the one event-loop thread."""

    def end_atomic(self) -> None:
        """The atomic section ends; commands held back meanwhile may go."""

    def is_oom(self) -> bool:
        """Whether the data is over its `maxmemory` (SPEC §5.3)."""
        return False
