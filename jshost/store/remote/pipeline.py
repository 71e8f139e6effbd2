"""What one backend connection has sent and is still owed, as plain bookkeeping (sans-I/O).

A `Pipeline` turns commands into the bytes to write (`out`) and a FIFO of `Entry`s awaiting
their replies (`pending`); the connection that owns it (`jshost.store.remote.connections`)
writes `out` and hands it every reply it parses (`reply`), in order. Nothing here touches a
socket or the event loop, so it is tested with plain values.

On a dedicated connection (`send_tracked`) it also follows the state the commands change, known
when they are sent because it decides whether a command gets a reply at all:

* MULTI ... EXEC: what EXEC will run (a SELECT inside changes the database then);
* SELECT and RESET: the database the connection is on (the owning session learns it too);
* CLIENT REPLY OFF / SKIP: commands that get no reply;
* the SUBSCRIBE family: their success answers only with pushes, so a `PING <marker>` follows
  each; its reply (a bulk string even while subscribed) ends the command's answer;
* blocking commands (BLPOP, ...): Redis runs a blocked client's next commands as soon as it is
  served, which could be in the middle of an atomic section (a JS write can serve it), so the
  commands sent after one are held back (`later`) until it is answered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

from jshost.replies import NO_REPLY, ErrorReply, NoReply, Reply, Status, StoreReply
from jshost.resp import ProtocolError, encode, encode_command

LOG = logging.getLogger("jshost.store.remote")

#: Commands whose success answers only with push messages (RESP3), never with a reply.
SUBSCRIBE: Final = frozenset(
    (b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe", b"sunsubscribe")
)
#: After a SUBSCRIBE-family command, this PING's reply (a bulk string in RESP3, even while
#: subscribed) marks the end of its answer: either nothing but pushes, or one error (ACL, arity).
MARKER: Final = b"jshost-subscribe-barrier"
_MARKER_COMMAND: Final = encode_command([b"PING", MARKER])


def is_ok(reply: Reply) -> bool:
    return type(reply) is Status and reply == b"OK"


class Entry:
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
        self.marker = marker  # a SUBSCRIBE-family command, answered when MARKER comes back
        self.error: tuple[Reply, bytes] | None = None  # its error, if it had one


def complete(entry: Entry, value: StoreReply, raw: bytes) -> None:
    """Give `entry` its reply (or the reply's bytes)."""
    if entry.hook is not None and not isinstance(value, NoReply):  # (a marker has no hook)
        try:
            entry.hook(value)
        except Exception:  # bookkeeping must not lose the reply
            LOG.exception("state tracking failed on %r", value)
    future = entry.future
    if future is not None and not future.done():
        future.set_result(raw if entry.raw else value)


class Pipeline:
    """The bookkeeping of one connection (see the module docstring).

    `is_blocking(args)` and `arity_ok(args)` come from the command table; `relogin()` gives the
    commands that make the connection usable again after RESET (which logs out); `db` is the
    database it starts on, and `on_db(db)` hears of every change of it."""

    def __init__(
        self,
        db: int,
        is_blocking: Callable[[Sequence[bytes]], bool],
        arity_ok: Callable[[Sequence[bytes]], bool],
        relogin: Callable[[], list[list[bytes]]],
        on_db: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.home_db = db  # where RESET takes it back
        self._is_blocking = is_blocking
        self._arity_ok = arity_ok
        self._relogin = relogin
        self._on_db = on_db
        self.out = bytearray()  # bytes to write, in order
        self.pending: deque[Entry] = deque()  # replies owed, in order
        self.in_multi = False
        self.queued: list[Sequence[bytes]] = []
        self.reply_mode = b"on"
        # Commands held back behind a blocking one still waiting (see `_write`).
        self.held_by: Entry | None = None
        self.later: deque[tuple[bytes, Entry | None]] = deque()

    # -- sending ---------------------------------------------------------------------------------

    def send(self, args: Sequence[bytes], future: asyncio.Future[Any], raw: bool) -> None:
        """Queue a stateless command (shared connections): no state to follow."""
        self.pending.append(Entry(future, raw))
        self.out += encode_command(args)

    def send_tracked(self, args: Sequence[bytes], future: asyncio.Future[Any],
                     raw: bool) -> bool:
        """Queue a command on a dedicated connection, following the state it changes; False
        when the command gets no reply (CLIENT REPLY OFF / SKIP): then `future` is not used."""
        name = args[0].lower()
        data = encode_command(list(args))
        if self._without_reply(name, args):
            self._write(data, None)
            return False
        entry = Entry(future, raw)
        if name in SUBSCRIBE and not self.in_multi and self._arity_ok(args):
            entry.marker = True
            data += _MARKER_COMMAND
        elif self.in_multi:
            self._track_multi(name, args, entry)
        else:
            self._track(name, args, entry)
        if name == b"hello" and len(args) > 1 and args[1] == b"2":
            # The backend connection stays on RESP3: the server answers the client's protocol.
            data = encode_command([args[0], b"3", *args[2:]])
        self.pending.append(entry)
        self._write(data, entry if entry.blocking else None)
        if name == b"reset":  # it logs out and goes back to RESP2: log in again at once
            for command in self._relogin():
                self.pending.append(Entry(None))
                self._write(encode_command(command), None)
        return True

    def _write(self, data: bytes, blocking: Entry | None) -> None:
        """Queue `data` for writing, unless a blocking command written earlier is still waiting:
        then hold it back until that one is answered."""
        if self.held_by is not None:
            self.later.append((data, blocking))
            return
        self.out += data
        self.held_by = blocking

    def _release(self) -> None:
        """The blocking command holding back the queue was answered: write what waited, up to
        and including the next blocking command."""
        self.held_by = None
        while self.later and self.held_by is None:
            data, blocking = self.later.popleft()
            self.out += data
            self.held_by = blocking

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

    def _track(self, name: bytes, args: Sequence[bytes], entry: Entry) -> None:
        """State changes of a command outside MULTI; blocking commands are marked."""
        if name == b"multi" and len(args) == 1:
            self.in_multi, self.queued = True, []
        elif name == b"select" and len(args) == 2:
            entry.hook = functools.partial(self._selected, args[1])
        elif name == b"reset":
            self.reply_mode = b"on"
            entry.hook = functools.partial(self._selected, b"%d" % self.home_db)
        elif self._is_blocking(args):
            entry.blocking = True

    def _track_multi(self, name: bytes, args: Sequence[bytes], entry: Entry) -> None:
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
        if is_ok(reply) or reply == b"RESET":
            self.db = int(db_text)
            if self._on_db is not None:
                self._on_db(self.db)

    def _executed(self, queued: list[Sequence[bytes]], reply: Reply) -> None:
        if type(reply) is list and len(reply) == len(queued):
            for args, result in zip(queued, reply, strict=True):
                if args[0].lower() == b"select" and len(args) == 2:
                    self._selected(args[1], result)

    # -- receiving -------------------------------------------------------------------------------

    def wants_raw(self) -> bool:
        """Whether the next reply is wanted with its bytes (`reply`'s `raw`)."""
        pending = self.pending
        return bool(pending) and (pending[0].raw or pending[0].marker)

    def reply(self, value: Reply, raw: bytes) -> None:
        """The next reply (not a push) the connection read; `raw` its bytes when `wants_raw`.
        Raises `ProtocolError` for a reply nobody is owed."""
        pending = self.pending
        if not pending:
            raise ProtocolError(f"Protocol error: unexpected reply {value!r}")
        head = pending[0]
        if head.marker:
            self._marker_reply(head, value, raw)
            return
        pending.popleft()
        complete(head, value, raw)
        if head is self.held_by:
            self._release()

    def _marker_reply(self, head: Entry, value: Reply, raw: bytes) -> None:
        """A reply while a SUBSCRIBE-family command is at the head: its error, or the marker."""
        if type(value) is bytes and value == MARKER:
            self.pending.popleft()
            error, error_raw = head.error or (NO_REPLY, b"")
            complete(head, error, error_raw)
        elif isinstance(value, ErrorReply) and head.error is None:
            head.error = (value, raw)
        else:
            raise ProtocolError(f"Protocol error: unexpected reply {value!r} to a subscription")

    def must_wait(self) -> bool:
        """Whether an atomic section must wait for a reply still owed (a blocking command at the
        head is not waited for)."""
        return bool(self.pending) and not self.pending[0].blocking

    def fail(self, text: str) -> None:
        """Every command still owed a reply gets the error `text`; nothing more is written."""
        self.later.clear()
        self.out.clear()
        error = ErrorReply(text)
        raw = encode(error, 3)
        pending, self.pending = self.pending, deque()
        for entry in pending:
            complete(entry, error, raw)
