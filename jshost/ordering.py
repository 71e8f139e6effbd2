"""Reply ordering for one client connection: a sans-I/O state machine.

Redis runs a client's commands in the order they arrived and answers each before it runs the
next. jshost keeps that order while some replies come late:

* a *blocking* command (``RG.FCALLASYNC`` waiting on a promise, ``BLPOP`` waiting for data, a
  command awaited on a backend Redis) holds its client: later commands stay unread in the query
  buffer until its reply is in, as Redis leaves a blocked client's query buffer alone. Other
  clients are served meanwhile;
* a *pipelined* command (run in order on a backend connection that many clients share, see
  `jshost.store.Session.submit`) does not: the client's next commands run at once while they
  can be pipelined too, and each reply waits its turn, so a client's pipeline reaches the backend
  as a pipeline. A command that cannot be pipelined, or one past `MAX_PIPELINED` replies due,
  waits until every reply before it is in (as behind a blocking one);
* a client that half-closes (EOF) still gets the replies of what it sent before, as Redis answers
  what it read before it saw the EOF: pipelined replies and the commands queued behind them; a
  command that blocks is dropped, as Redis drops a blocked client that goes away;
* a client whose replies pile up unwritten (`output_full`, the connection's bound) runs no more
  commands until they are written (`output_sent`): the rest of its query buffer waits.

This module holds only those rules: no sockets, no asyncio, no encoding. `jshost.connection`
tells it what happened, in plain values, and it says what to do:

==============================  ================================================================
the connection calls            and is told
==============================  ================================================================
``next(read, pipelinable)``      the next command to run now, or None: none is left, or the
                                rest waits (``feed(commands)`` hands over a batch read at once)
``reply(r)``                    `WRITE` r now, or `WAIT`: it is queued behind replies due
``close_after(r)``              the same, and the connection closes after it (QUIT)
``pipelined(p)``                `WATCH` p (call ``completed()`` once p is done), or `WAIT`
``blocking(p)``                 `WATCH`, `WAIT`, or `DROP` p (the client half-closed: close)
``completed()``                 the replies now due, in order, and the next pending one to watch
``protocol_error(r)``           `WRITE` or `WAIT` the error reply, then the connection closes
``eof()``, ``shutdown()``,      what to stop waiting for (and, on shutdown, what to cancel: its
``lost()``                      reply becomes the shutting-down error in turn)
``output_full()``,              nothing: whether commands run (`runs_commands`) follows
``output_sent()``
==============================  ================================================================

A pending reply (`PendingReply`) is whatever the connection uses for a reply to come: it only
has to say whether it is ``done()`` and give its ``reply()`` then.

The questions asked for every command are also answered ahead, as attributes the machine keeps
current, so that the common case costs the connection an attribute read rather than a call:
`reads_now` (the next command may be read and run without ``next()``), `writes_now` (a reply
known now is written at once, without ``reply()``) and `runs_commands` (worth reading input).

The states are `State`; every change of state goes through one table, `TRANSITIONS`, and an
event a state has no row for is a bug (`OrderingError`). Two flags qualify a state without
changing it: `half_closed` (an EOF is acted on once the client is at rest: READY with nothing
left to run, or BLOCKED) and `output_held` (no command runs until the output is written).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final, Generic, Protocol, TypeAlias, TypeVar

#: The most pipelined replies one client may have due: past it, its next commands wait (in the
#: query buffer, as bytes) until they are in, so memory per client stays bounded.
MAX_PIPELINED: Final = 1024

#: A command as the parser gives it: its name and arguments.
Command: TypeAlias = list[bytes]


class State(enum.IntEnum):
    """Where one connection is. Commands run only in READY and PIPELINING."""

    #: Nothing is due: commands run as they are read, their replies are written at once.
    READY = enum.auto()
    #: Pipelined replies are due: pipelinable commands still run, their replies queue behind.
    PIPELINING = enum.auto()
    #: Replies are due and the next command (or a blocking command's reply) waits for them all.
    STALLED = enum.auto()
    #: A command's reply is awaited, nothing before it: the client's next commands wait.
    BLOCKED = enum.auto()
    #: No command runs any more; the connection closes once nothing is due and all is written.
    CLOSING = enum.auto()
    #: The connection is gone: nothing is run or written.
    CLOSED = enum.auto()


#: The states by name (module constants are quicker to reach than `State` members).
READY, PIPELINING, STALLED, BLOCKED, CLOSING, CLOSED = State


class Event(enum.IntEnum):
    """What can happen to a connection."""

    REPLY = enum.auto()  # a command answered now (a reply, or none)
    PIPELINED = enum.auto()  # a command answered with a pipelined reply to come
    BLOCKING = enum.auto()  # a command answered with a reply its client must wait for
    CLOSE_AFTER = enum.auto()  # a command answered, and the connection must close after (QUIT)
    HOLD = enum.auto()  # a command must wait for the replies due before it
    COMPLETED = enum.auto()  # replies at the head of the queue are in; others remain due
    DRAINED = enum.auto()  # every reply due is in
    PROTOCOL_ERROR = enum.auto()  # input that is not RESP: its error reply, then close
    EOF = enum.auto()  # the client half-closed, and is at rest (see `Ordering.eof`)
    SHUTDOWN = enum.auto()  # the server shuts down
    LOST = enum.auto()  # the connection is gone (closed, aborted, or refused when it came)


S, E = State, Event

#: Every change of state: ``TRANSITIONS[state][event]`` is the next state. No row: a bug.
TRANSITIONS: Final[dict[State, dict[Event, State]]] = {
    S.READY: {
        E.REPLY: S.READY,
        E.PIPELINED: S.PIPELINING,
        E.BLOCKING: S.BLOCKED,
        E.CLOSE_AFTER: S.CLOSING,
        E.PROTOCOL_ERROR: S.CLOSING,
        E.EOF: S.CLOSING,
        E.SHUTDOWN: S.CLOSING,
        E.LOST: S.CLOSED,
    },
    S.PIPELINING: {
        E.REPLY: S.PIPELINING,
        E.PIPELINED: S.PIPELINING,
        E.BLOCKING: S.STALLED,
        E.HOLD: S.STALLED,
        E.CLOSE_AFTER: S.CLOSING,
        E.PROTOCOL_ERROR: S.CLOSING,
        E.COMPLETED: S.PIPELINING,
        E.DRAINED: S.READY,
        E.SHUTDOWN: S.CLOSING,
        E.LOST: S.CLOSED,
    },
    S.STALLED: {
        E.COMPLETED: S.STALLED,
        E.DRAINED: S.READY,
        E.SHUTDOWN: S.CLOSING,
        E.LOST: S.CLOSED,
    },
    S.BLOCKED: {
        E.DRAINED: S.READY,
        E.EOF: S.CLOSING,  # the blocked command is dropped
        E.SHUTDOWN: S.CLOSING,  # the blocked command is dropped (answered "shutting down")
        E.LOST: S.CLOSED,
    },
    S.CLOSING: {
        E.COMPLETED: S.CLOSING,
        E.DRAINED: S.CLOSING,
        E.EOF: S.CLOSING,
        E.SHUTDOWN: S.CLOSING,
        E.LOST: S.CLOSED,
    },
    S.CLOSED: {  # (nothing is due any more: a late completion releases nothing)
        E.EOF: S.CLOSED,
        E.SHUTDOWN: S.CLOSED,
        E.LOST: S.CLOSED,
    },
}

del S, E


class Do(enum.IntEnum):
    """What the connection does with the reply (or pending reply) it just reported."""

    WRITE = enum.auto()  # write the reply now
    WAIT = enum.auto()  # nothing: it is queued and comes out of `completed()` in its turn
    WATCH = enum.auto()  # call `completed()` once this pending reply is done
    DROP = enum.auto()  # stop waiting for this pending reply: its client is going away


WRITE: Final = Do.WRITE
WAIT: Final = Do.WAIT
WATCH: Final = Do.WATCH
DROP: Final = Do.DROP


class OrderingError(RuntimeError):
    """An event the current state has no transition for: a bug in the caller."""


class PendingReply(Protocol):
    """A reply to come, as the connection holds it."""

    def done(self) -> bool:
        """Whether the reply is in."""

    def reply(self) -> object:
        """The reply (called once `done()` is true)."""


P = TypeVar("P", bound=PendingReply)


class _Ready:
    """A reply known already, queued behind pending ones."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def done(self) -> bool:
        return True

    def reply(self) -> object:
        return self.value


def _no_input() -> Command | None:
    return None


def _never(command: Command) -> bool:
    return False


class Ordering(Generic[P]):
    """The reply-ordering state of one connection (see the module docstring)."""

    def __init__(self, max_pipelined: int = MAX_PIPELINED) -> None:
        self.max_pipelined = max_pipelined
        self.state = READY
        #: The client half-closed: once it is at rest (nothing due and no command left to run, or
        #: blocked) the connection closes.
        self.half_closed = False
        #: The replies made so far must be written before another command runs.
        self.output_held = False
        # The two questions of every command, answered ahead (kept by `_update`), so that the
        # common case costs the connection an attribute read, not a call:
        #: The next command may be read (from the query buffer) and run without asking `next()`.
        self.reads_now = True
        #: A reply known now is written at once, without telling `reply()`.
        self.writes_now = True
        #: A command may run now (READY; or PIPELINING, if it pipelines; and output not held).
        self.runs_commands = True
        # Replies due, in order: pending ones and the known replies queued behind them.
        self._due: deque[P | _Ready] = deque()
        # The pending reply `completed()` is expected for (always the head of `_due`).
        self._watched: P | None = None
        # Commands read and not yet run (one that waits for the replies due; or a batch fed).
        self._queued: deque[Command] = deque()

    # --- commands ------------------------------------------------------------------------------

    def feed(self, commands: Iterable[Command]) -> None:
        """Commands read from the client, in order; `next()` hands them out when they may run."""
        if self.state < CLOSING:
            self._queued.extend(commands)
            self._update()

    def next(
        self,
        read: Callable[[], Command | None] = _no_input,
        pipelinable: Callable[[Command], bool] = _never,
    ) -> Command | None:
        """The next command to run now (fed earlier, else taken from `read`), or None: no
        complete command is left, or the client must wait. While replies are due only a command
        that is `pipelinable` (one the store pipelines) runs. The caller runs the command and
        reports what it gave (`reply`, `pipelined`, `blocking`, `close_after`)."""
        state = self.state
        if state > PIPELINING or self.output_held:
            return None
        queued = self._queued
        command: Command | None
        if queued:
            command = queued.popleft()
            self._update()
        else:
            command = read()
            if command is None:
                if self.half_closed and state is READY:
                    self._fire(Event.EOF)  # at rest after a half-close: close
                return None
        if state is READY or (
            len(self._due) < self.max_pipelined and pipelinable(command)
        ):
            return command
        queued.appendleft(command)  # runs once the replies before it are in
        self._fire(Event.HOLD)
        return None

    @property
    def queued(self) -> int:
        """Commands read and not yet run (held here, not in the query buffer)."""
        return len(self._queued)

    # --- what a command gave -------------------------------------------------------------------

    def reply(self, reply: object) -> Do:
        """A command answered now: `WRITE` it, or `WAIT` (queued behind the replies due)."""
        if self.state is not PIPELINING:  # (PIPELINING, REPLY) -> PIPELINING: no change
            self._fire(Event.REPLY)
            if self.writes_now:
                return WRITE
        self._due.append(_Ready(reply))
        return WAIT

    def close_after(self, reply: object) -> Do:
        """A command answered, and the connection closes once that reply is written (QUIT)."""
        self._queued.clear()
        self._fire(Event.CLOSE_AFTER)
        if self._due:
            self._due.append(_Ready(reply))
            return WAIT
        return WRITE

    def pipelined(self, pending: P) -> Do:
        """A command's reply comes later, and the client's next commands may run meanwhile."""
        if self.state is not PIPELINING:  # (PIPELINING, PIPELINED) -> PIPELINING: no change
            self._fire(Event.PIPELINED)
        self._due.append(pending)
        if self._watched is None:
            self._watched = pending
            return WATCH
        return WAIT

    def blocking(self, pending: P) -> Do:
        """A command's reply comes later, and its client waits for it. `DROP` when the client
        half-closed meanwhile: the command is dropped and the connection closes."""
        self._fire(Event.BLOCKING)
        self._due.append(pending)
        if self.state is BLOCKED and self.half_closed:
            self._due.clear()
            self._fire(Event.EOF)
            return DROP
        if self._watched is None:
            self._watched = pending
            return WATCH
        return WAIT

    def protocol_error(self, reply: object) -> Do:
        """Input that cannot be parsed: its error reply goes out in turn, then the connection
        closes (the bytes cannot be skipped)."""
        self._queued.clear()
        self._fire(Event.PROTOCOL_ERROR)
        if self._due:
            self._due.append(_Ready(reply))
            return WAIT
        return WRITE

    # --- pending replies -----------------------------------------------------------------------

    def completed(self) -> tuple[list[object], P | None]:
        """The watched pending reply is done: the replies now due in order (the leading ones
        that are in), and the next pending reply to watch (None when none is left).

        Once nothing is due the client is READY again (its next commands run, the caller calls
        `next()`), unless it is closing."""
        self._watched = None
        due = self._due
        replies: list[object] = []
        while due:
            head = due[0]
            if not isinstance(head, _Ready) and not head.done():
                if replies:
                    self._fire(Event.COMPLETED)
                self._watched = head
                return replies, head
            due.popleft()
            replies.append(head.reply())
        if replies:
            self._fire(Event.DRAINED)
        return replies, None

    @property
    def due(self) -> int:
        """Replies due (pending, or known and queued behind pending ones)."""
        return len(self._due)

    @property
    def blocked_on(self) -> P | None:
        """The pending reply this client is blocked on (state BLOCKED), if any."""
        return self._watched if self.state is BLOCKED else None

    @property
    def closable(self) -> bool:
        """Whether the connection may close now (once what was written has gone out)."""
        return (self.state is CLOSING and not self._due) or self.state is CLOSED

    # --- the connection ------------------------------------------------------------------------

    def eof(self) -> P | None:
        """The client half-closed. Returns the blocked command's pending reply, now dropped.

        At rest (READY with nothing left to run, or BLOCKED) the state is then CLOSING: close
        once the output is written. Otherwise what the client sent before is answered first
        (replies due, the commands waiting behind them or for the output to be written), and
        the EOF is acted on once it is at rest (`next()` finds nothing, or a command blocks)."""
        self.half_closed = True
        state = self.state
        dropped = None
        if state is BLOCKED:
            dropped = self._watched
            self._due.clear()
            self._watched = None
        elif state is PIPELINING or state is STALLED or (
            state is READY and (self._queued or self.output_held)
        ):
            self._update()  # not at rest yet
            return None
        self._fire(Event.EOF)
        return dropped

    def output_full(self) -> None:
        """The replies made since the last write passed the connection's bound: the next
        command waits until they are written (`output_sent`)."""
        self.output_held = True
        self._update()

    def output_sent(self) -> None:
        """The held replies are written: commands run again (if the state lets them)."""
        self.output_held = False
        self._update()

    def shutdown(self) -> tuple[P | None, list[P]]:
        """The server shuts down: no command runs any more. Returns the blocked command's
        pending reply, dropped (its client is answered "shutting down" now), and the pending
        replies due, for the caller to cancel (each is then answered "shutting down" in turn)."""
        if self.state is CLOSED:
            return None, []
        dropped = self._watched if self.state is BLOCKED else None
        if dropped is not None:
            self._due.clear()
            self._watched = None
        self._queued.clear()
        self._fire(Event.SHUTDOWN)
        return dropped, self._pending()

    def lost(self) -> list[P]:
        """The connection is gone: every pending reply is dropped (returned)."""
        pending = self._pending()
        self._due.clear()
        self._queued.clear()
        self._watched = None
        self._fire(Event.LOST)
        return pending

    # --- internals -----------------------------------------------------------------------------

    def _pending(self) -> list[P]:
        return [item for item in self._due if not isinstance(item, _Ready)]

    def _fire(self, event: Event) -> None:
        """Move to the state the table gives (a self-loop of the table needs no call: the
        commonest, a reply or a pipelined one while PIPELINING, skips it)."""
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise OrderingError(f"{event.name} in state {self.state.name}") from None
        self._update()

    def _update(self) -> None:
        state = self.state
        ready = state is READY
        free = not self.output_held
        self.writes_now = ready
        self.reads_now = ready and free and not self._queued and not self.half_closed
        self.runs_commands = state <= PIPELINING and free
