"""The reply-ordering state machine (`jshost.ordering`), driven with plain values: commands are
lists of bytes, replies are whatever the test passes, and a reply to come is a `Later` that the
test completes by hand. No sockets and no event loop: what the connection would do is what the
machine answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from jshost.ordering import (
    DROP,
    TRANSITIONS,
    WAIT,
    WATCH,
    WRITE,
    Event,
    Ordering,
    OrderingError,
    State,
)

GET = [b"GET", b"k"]
SET = [b"SET", b"k", b"v"]
FCALL = [b"RG.FCALL", b"lib", b"f", b"0"]  # answered by jshost: never pipelined
PING = [b"PING"]


class Later:
    """A reply to come; `finish()` makes it done."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.is_done = False

    def done(self) -> bool:
        return self.is_done

    def reply(self) -> object:
        assert self.is_done, "a reply taken before it is in"
        return self.value

    def finish(self) -> Later:
        self.is_done = True
        return self


def store_commands(command: list[bytes]) -> bool:
    """Pipelinable: what a remote store pipelines (here: GET and SET)."""
    return command[0] in (b"GET", b"SET")


def machine(max_pipelined: int = 1024) -> Ordering[Later]:
    return Ordering(max_pipelined)


def source(*commands: list[bytes]) -> Callable[[], list[bytes] | None]:
    """A query buffer holding `commands` (as the parser's `get_command`)."""
    it: Iterator[list[bytes]] = iter(commands)
    return lambda: next(it, None)


def run_all(order: Ordering[Later], read: Callable[[], list[bytes] | None]) -> list[list[bytes]]:
    """The commands `next` hands out before it says wait (each one is answered by the test)."""
    ran = []
    while (command := order.next(read, store_commands)) is not None:
        ran.append(command)
    return ran


# --- commands answered at once ---------------------------------------------------------------


def test_replies_known_at_once_are_written_at_once_in_order() -> None:
    order = machine()
    read = source(PING, SET, GET)
    for _ in range(3):
        assert order.next(read, store_commands) is not None
        assert order.reply(b"r") is WRITE
        assert order.state is State.READY
    assert order.next(read, store_commands) is None  # the query buffer is empty
    assert order.state is State.READY and order.due == 0


def test_a_batch_fed_at_once_runs_in_order() -> None:
    order = machine()
    order.feed([PING, GET, SET])
    assert order.queued == 3 and not order.reads_now  # the batch first, then the query buffer
    assert run_all(order, source()) == [PING, GET, SET]
    assert order.queued == 0 and order.reads_now


def test_the_answers_kept_ahead_follow_the_state() -> None:
    order = machine()
    assert order.reads_now and order.writes_now
    order.next(source(GET), store_commands)
    order.pipelined(Later(b"a"))
    assert not order.reads_now and not order.writes_now  # ask `next()` and `reply()` now
    assert order.reply(b"b") is WAIT


# --- a blocked command -----------------------------------------------------------------------


def test_a_blocking_command_holds_its_client_until_its_reply_is_in() -> None:
    order = machine()
    reads = []

    def read() -> list[bytes] | None:
        reads.append(1)
        return PING

    assert order.next(read, store_commands) == PING
    later = Later(b"v")
    assert order.blocking(later) is WATCH
    assert order.state is State.BLOCKED and order.blocked_on is later
    # Later commands stay in the query buffer: not even read.
    assert order.next(read, store_commands) is None
    assert len(reads) == 1
    assert not order.runs_commands

    later.finish()
    assert order.completed() == ([b"v"], None)
    assert order.state is State.READY and order.blocked_on is None
    assert order.next(read, store_commands) == PING  # and now the next command runs


# --- pipelines -------------------------------------------------------------------------------


def test_pipelined_replies_go_out_in_order_as_they_come_in() -> None:
    order = machine()
    read = source(GET, SET, GET)
    replies = [Later(b"a"), Later(b"b"), Later(b"c")]
    do = []
    for later in replies:
        assert order.next(read, store_commands) is not None
        do.append(order.pipelined(later))
    assert do == [WATCH, WAIT, WAIT]  # only the head is watched
    assert order.state is State.PIPELINING and order.due == 3

    replies[1].finish()  # not the head: nothing goes out yet
    replies[0].finish()
    written, watch = order.completed()
    assert written == [b"a", b"b"] and watch is replies[2]
    assert order.state is State.PIPELINING

    replies[2].finish()
    assert order.completed() == ([b"c"], None)
    assert order.state is State.READY


def test_a_reply_known_at_once_waits_behind_pipelined_ones() -> None:
    order = machine()
    read = source(GET, SET)
    first = Later(b"first")
    order.next(read, store_commands)
    order.pipelined(first)
    order.next(read, store_commands)  # e.g. SET with a wrong arity: an error known at once
    assert order.reply(b"-ERR") is WAIT
    first.finish()
    assert order.completed() == ([b"first", b"-ERR"], None)


def test_a_command_that_cannot_be_pipelined_waits_for_the_replies_before_it() -> None:
    order = machine()
    read = source(GET, FCALL, GET)
    head = Later(b"a")
    assert order.next(read, store_commands) == GET
    order.pipelined(head)
    assert order.next(read, store_commands) is None  # FCALL must see what the GET before it did
    assert order.state is State.STALLED and order.queued == 1
    assert order.next(read, store_commands) is None  # stalled: the GET after it is not read either

    head.finish()
    assert order.completed() == ([b"a"], None)
    assert order.state is State.READY
    assert order.next(read, store_commands) == FCALL  # the held command first, then the query buffer
    assert order.reply(b"f") is WRITE
    assert order.next(read, store_commands) == GET


def test_pipelined_replies_due_are_bounded() -> None:
    order = machine(max_pipelined=3)
    read = source(*[[b"GET", b"%d" % i] for i in range(5)])
    pending = []
    while (command := order.next(read, store_commands)) is not None:
        pending.append(Later(command[1]))
        order.pipelined(pending[-1])
    assert len(pending) == 3 and order.due == 3
    assert order.state is State.STALLED and order.queued == 1  # the 4th waits
    for later in pending:
        later.finish()
    assert order.completed() == ([b"0", b"1", b"2"], None)
    assert order.next(read, store_commands) == [b"GET", b"3"]


def test_a_blocking_command_behind_pipelined_replies_is_queued_in_turn() -> None:
    order = machine()
    read = source(GET, GET, PING)
    head, blocking = Later(b"a"), Later(b"blocked")
    order.next(read, store_commands)
    order.pipelined(head)
    order.next(read, store_commands)  # a store command the store would not pipeline after all: awaited
    assert order.blocking(blocking) is WAIT
    assert order.state is State.STALLED and not order.blocked_on
    assert order.next(read, store_commands) is None

    head.finish()
    assert order.completed() == ([b"a"], blocking)
    blocking.finish()
    assert order.completed() == ([b"blocked"], None)
    assert order.next(read, store_commands) == PING


# --- half-close ------------------------------------------------------------------------------


def test_half_close_at_rest_closes_at_once() -> None:
    order = machine()
    assert order.eof() is None
    assert order.state is State.CLOSING and order.closable


def test_half_close_drops_a_blocked_command() -> None:
    order = machine()
    later = Later(b"never sent")
    order.next(source(PING), store_commands)
    order.blocking(later)
    assert order.eof() is later
    assert order.closable
    later.finish()
    assert order.completed() == ([], None)  # its reply is nobody's


def test_half_close_waits_for_the_pipelined_replies_due() -> None:
    order = machine()
    read = source(GET)
    head = Later(b"a")
    order.next(read, store_commands)
    order.pipelined(head)
    assert order.eof() is None
    assert order.state is State.PIPELINING and not order.closable
    head.finish()
    assert order.completed() == ([b"a"], None)
    assert order.next(read, store_commands) is None  # nothing left to run: now it closes
    assert order.closable


def test_half_close_answers_pipelined_replies_and_what_waited_behind_them_first() -> None:
    order = machine()
    read = source(GET, FCALL, PING)
    head = Later(b"a")
    order.next(read, store_commands)
    order.pipelined(head)
    assert order.next(read, store_commands) is None  # FCALL waits
    assert order.eof() is None
    assert order.state is State.STALLED and not order.closable

    head.finish()
    assert order.completed() == ([b"a"], None)
    assert order.next(read, store_commands) == FCALL  # read before the EOF: run
    assert order.reply(b"f") is WRITE
    assert order.next(read, store_commands) == PING
    assert order.reply(b"PONG") is WRITE
    assert order.next(read, store_commands) is None  # at rest: now it closes
    assert order.state is State.CLOSING and order.closable


def test_half_close_then_a_command_that_blocks_is_dropped() -> None:
    order = machine()
    read = source(GET, FCALL)
    head = Later(b"a")
    order.next(read, store_commands)
    order.pipelined(head)
    order.next(read, store_commands)
    order.eof()
    head.finish()
    order.completed()
    assert order.next(read, store_commands) == FCALL
    assert order.blocking(Later(b"late")) is DROP
    assert order.closable


# --- output not taken in ---------------------------------------------------------------------


def test_no_command_runs_while_the_output_is_held() -> None:
    order = machine()
    reads = []

    def read() -> list[bytes] | None:
        reads.append(1)
        return PING

    order.output_full()
    assert not order.runs_commands and not order.reads_now
    assert order.next(read, store_commands) is None
    assert reads == []  # the rest stays in the query buffer
    order.output_sent()
    assert order.runs_commands and order.reads_now
    assert order.next(read, store_commands) == PING


def test_replies_due_still_go_out_while_the_output_is_held() -> None:
    order = machine()
    head = Later(b"a")
    order.next(source(GET), store_commands)
    order.pipelined(head)
    order.output_full()
    head.finish()
    assert order.completed() == ([b"a"], None)
    assert order.state is State.READY and not order.runs_commands  # ... but nothing runs
    order.output_sent()
    assert order.runs_commands


def test_half_close_while_the_output_is_held_runs_the_rest_first() -> None:
    order = machine()
    read = source(PING)
    order.output_full()
    assert order.eof() is None
    assert order.state is State.READY and not order.closable
    order.output_sent()
    assert order.next(read, store_commands) == PING  # read before the EOF: run
    assert order.reply(b"PONG") is WRITE
    assert order.next(read, store_commands) is None
    assert order.closable


# --- a client gone mid-reply ------------------------------------------------------------------


def test_a_client_gone_mid_reply_drops_every_pending_reply() -> None:
    order = machine()
    read = source(GET, GET, FCALL)
    a, b = Later(b"a"), Later(b"b")
    order.next(read, store_commands)
    order.pipelined(a)
    order.next(read, store_commands)
    order.pipelined(b)
    order.next(read, store_commands)  # held
    assert order.lost() == [a, b]
    assert order.state is State.CLOSED
    assert order.next(read, store_commands) is None and order.queued == 0
    a.finish()
    assert order.completed() == ([], None)  # a late completion writes nothing
    assert order.shutdown() == (None, [])


def test_a_blocked_client_gone_drops_its_reply() -> None:
    order = machine()
    later = Later(b"v")
    order.next(source(PING), store_commands)
    order.blocking(later)
    assert order.lost() == [later]
    assert not order.blocked_on


# --- shutdown --------------------------------------------------------------------------------


def test_shutdown_drops_a_blocked_command() -> None:
    order = machine()
    later = Later(b"v")
    order.next(source(PING), store_commands)
    order.blocking(later)
    assert order.shutdown() == (later, [])
    assert order.closable


def test_shutdown_cancels_pipelined_replies_which_are_then_answered_in_turn() -> None:
    order = machine()
    read = source(GET, GET, FCALL)
    a, b = Later(b"a"), Later(b"b")
    order.next(read, store_commands)
    order.pipelined(a)
    order.next(read, store_commands)
    order.pipelined(b)
    order.next(read, store_commands)  # FCALL held: never run now
    assert order.shutdown() == (None, [a, b])
    assert order.state is State.CLOSING and not order.closable
    assert order.next(read, store_commands) is None and order.queued == 0
    a.finish(), b.finish()  # (cancelled: the caller's replies say "shutting down")
    assert order.completed() == ([b"a", b"b"], None)
    assert order.closable


# --- closing ---------------------------------------------------------------------------------


def test_a_protocol_error_is_answered_then_the_connection_closes() -> None:
    order = machine()
    assert order.protocol_error(b"-ERR Protocol error") is WRITE
    assert order.closable
    assert order.next(source(PING), store_commands) is None


def test_a_protocol_error_behind_pipelined_replies_waits_its_turn() -> None:
    order = machine()
    head = Later(b"a")
    order.next(source(GET), store_commands)
    order.pipelined(head)
    assert order.protocol_error(b"-ERR Protocol error") is WAIT
    assert order.state is State.CLOSING and not order.closable
    head.finish()
    assert order.completed() == ([b"a", b"-ERR Protocol error"], None)
    assert order.closable


def test_quit_closes_after_its_reply_and_runs_nothing_after_it() -> None:
    order = machine()
    read = source([b"QUIT"], PING)
    order.next(read, store_commands)
    assert order.close_after(b"OK") is WRITE
    assert order.closable
    assert order.next(read, store_commands) is None


# --- the table -------------------------------------------------------------------------------


def _reach(state: State, event: Event) -> tuple[Ordering[Later], list[Later]]:
    """A machine in `state`, set up so that `event` can happen there, and its replies due."""
    order = machine(max_pipelined=8)
    due: list[Later] = []
    if state is State.READY:
        return order, due
    if state is State.BLOCKED:
        order.next(source(PING), store_commands)
        due.append(Later(b"blocked"))
        order.blocking(due[-1])
        return order, due
    for _ in range(2 if event is Event.COMPLETED else 1):
        order.next(source(GET), store_commands)
        due.append(Later(b"due"))
        order.pipelined(due[-1])
    if state is State.STALLED:
        order.next(source(FCALL), store_commands)
    elif state is State.CLOSING:
        order.shutdown()
    elif state is State.CLOSED:
        order.lost()
    return order, due


def _fire(order: Ordering[Later], event: Event, due: list[Later]) -> None:
    """Make `event` happen through the public methods only."""
    if event is Event.REPLY:
        order.reply(b"r")
    elif event is Event.PIPELINED:
        order.pipelined(Later(b"p"))
    elif event is Event.BLOCKING:
        order.blocking(Later(b"b"))
    elif event is Event.CLOSE_AFTER:
        order.close_after(b"OK")
    elif event is Event.HOLD:
        assert order.next(source(FCALL), store_commands) is None
    elif event is Event.COMPLETED:
        due[0].finish()
        order.completed()
    elif event is Event.DRAINED:
        for later in due:
            later.finish()
        order.completed()
    elif event is Event.PROTOCOL_ERROR:
        order.protocol_error(b"-ERR")
    elif event is Event.EOF:
        order.eof()
    elif event is Event.SHUTDOWN:
        order.shutdown()
    elif event is Event.LOST:
        order.lost()


TABLE = [(state, event, after)
         for state, row in TRANSITIONS.items() for event, after in row.items()]


@pytest.mark.parametrize(("state", "event", "after"), TABLE,
                         ids=[f"{s.name}-{e.name}" for s, e, _ in TABLE])
def test_every_transition_of_the_table_is_what_the_methods_do(
    state: State, event: Event, after: State
) -> None:
    order, due = _reach(state, event)
    assert order.state is state
    _fire(order, event, due)
    assert order.state is after
    # The answers kept ahead for the connection's hot path agree with the state.
    assert order.writes_now is (after is State.READY)
    assert order.reads_now is (after is State.READY and not order.queued and not order.half_closed)
    assert order.runs_commands is (after in (State.READY, State.PIPELINING))


def test_every_state_has_a_row_and_lost_always_ends_in_closed() -> None:
    assert set(TRANSITIONS) == set(State)
    assert all(row[Event.LOST] is State.CLOSED for row in TRANSITIONS.values())


@pytest.mark.parametrize("state", [State.BLOCKED, State.STALLED, State.CLOSING, State.CLOSED])
def test_a_reply_where_no_command_may_run_is_a_bug(state: State) -> None:
    order, _ = _reach(state, Event.REPLY)
    assert not order.runs_commands
    with pytest.raises(OrderingError, match=f"REPLY in state {state.name}"):
        order.reply(b"r")
