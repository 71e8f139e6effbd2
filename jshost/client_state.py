"""What the command modules may read and change about one client (`ClientState`): its protocol,
auth, name, MULTI queue, subscriptions, CLIENT flags. Its `jshost.connection.Connection` owns
it; the command modules get it with every command."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from jshost.replies import Push
from jshost.store import CommandInfo, Session

if TYPE_CHECKING:
    from jshost.commands.dispatch import ServerContext

#: Push kinds that carry the client's subscription count as their third element.
_SUBSCRIPTION_PUSHES: Final = {
    b"subscribe": "channels",
    b"unsubscribe": "channels",
    b"psubscribe": "channels",  # Redis counts channels and patterns together ...
    b"punsubscribe": "channels",
    b"ssubscribe": "shard",  # ... and shard channels apart
    b"sunsubscribe": "shard",
}


@dataclass(eq=False)
class ClientState:
    """What the command modules may read and change about one client.

    Its store session is opened on first use, not when the client connects: accepting a burst
    of connections stays cheap, and a client that never reaches the store never costs a
    session."""

    ctx: ServerContext
    #: Opens this client's store session (`session`, on first use).
    session_factory: Callable[[], Session]
    #: The id HELLO and CLIENT ID report (jshost's own numbering, from 1).
    id: int
    peer: str
    local: str
    fd: int = -1
    protocol: int = 2
    authenticated: bool = True
    name: bytes | None = None
    lib_name: bytes = b""
    lib_ver: bytes = b""
    #: Commands queued since MULTI, or None outside a transaction.
    multi: list[list[bytes]] | None = None
    #: A command was refused while queueing: EXEC must answer EXECABORT.
    multi_dirty: bool = False
    #: WATCH succeeded since the last EXEC / DISCARD / UNWATCH / RESET: EXEC asks the store.
    watching: bool = False
    #: True while EXEC runs its queue: host calls then run with blocking denied.
    in_exec: bool = False
    #: Subscription counts reported by the store's pushes ("channels" and "shard").
    subscriptions: dict[str, int] = field(default_factory=dict)
    #: What it is subscribed to, from the same pushes (CLIENT LIST's sub, psub and ssub).
    channels: set[bytes] = field(default_factory=set)
    patterns: set[bytes] = field(default_factory=set)
    shard_channels: set[bytes] = field(default_factory=set)
    #: CLIENT REPLY: `client_cmd.REPLY_OFF`, `REPLY_SKIP` (this command's reply), `REPLY_SKIP_NEXT`
    #: (the next one's); 0 normally (one test per command).
    reply_flags: int = 0
    #: CLIENT NO-EVICT, NO-TOUCH, TRACKING (with its REDIRECT target: 0 none, -1 when off).
    no_evict: bool = False
    no_touch: bool = False
    tracking: bool = False
    tracking_redirect: int = -1
    #: In pub/sub mode: subscribed to at least one channel, pattern or shard channel.
    subscribed: bool = False
    #: Pushes are dropped while set (RESET unsubscribes silently, as Redis does).
    mute_pushes: bool = False
    #: Close the connection once the replies so far are written (QUIT).
    close_after_reply: bool = False
    created: float = field(default_factory=time.monotonic)
    #: The command being (or last) run, as CLIENT INFO's `cmd=` shows it.
    last_command: CommandInfo | None = None
    _session: Session | None = None

    @property
    def session(self) -> Session:
        """The client's store session (opened now if it was not yet)."""
        session = self._session
        if session is None:
            session = self._session = self.session_factory()
        return session

    @property
    def session_db(self) -> int:
        """The selected database, without opening a session for it (0 before any)."""
        return self._session.db if self._session is not None else 0

    @property
    def age(self) -> float:
        """Seconds since the client connected."""
        return time.monotonic() - self.created

    def close_session(self) -> None:
        """The client is gone: close its session if it had one."""
        if self._session is not None:
            self._session.close()

    def note_push(self, push: Push) -> None:
        """Track the subscription count carried by subscribe/unsubscribe confirmations."""
        if len(push) == 3 and type(push[2]) is int:
            kind = _SUBSCRIPTION_PUSHES.get(push[0]) if isinstance(push[0], bytes) else None
            if kind is not None:
                self.subscriptions[kind] = push[2]
                self.subscribed = any(self.subscriptions.values())
                self._note_subscription(push[0], push[1])

    def _note_subscription(self, kind: bytes, name: object) -> None:
        names = {b"subscribe": self.channels, b"unsubscribe": self.channels,
                 b"psubscribe": self.patterns, b"punsubscribe": self.patterns,
                 b"ssubscribe": self.shard_channels, b"sunsubscribe": self.shard_channels}[kind]
        if not isinstance(name, bytes):
            names.clear()  # "unsubscribed from everything" (no name)
        elif kind.startswith((b"sub", b"psub", b"ssub")):
            names.add(name)
        else:
            names.discard(name)

    def reset_subscriptions(self) -> None:
        """Forget every subscription (RESET)."""
        self.subscriptions.clear()
        self.subscribed = False
        self.channels.clear()
        self.patterns.clear()
        self.shard_channels.clear()
