"""One client connection: bytes in, commands to the dispatcher, replies out in order.

This module is transport glue: it knows the asyncio transport and the Redis protocol, not what
any command does, nor the rules of reply ordering. Per connection it keeps:

* a `RequestParser` (sans-I/O, `jshost.resp`) fed with every read — the query buffer;
* an `Ordering` (sans-I/O, `jshost.ordering`): which command may run now, and when each reply
  goes out (blocking and pipelined commands, half-close, shutdown: the rules are there).
  Commands parsed elsewhere enter it as a batch (`Connection.feed_commands`);
* a `ClientState` (`jshost.client_state`): protocol (2 or 3), auth, name, MULTI queue, pub/sub counts — the state the
  command modules read and change;
* an output buffer. Replies are encoded into it as commands run and the buffer is written
  **once per event-loop pass** (a `loop.call_soon` flush scheduled when it goes non-empty),
  so a pipeline of N commands read in one chunk leaves in one write. A reply that kept its
  client waiting (a blocking or pipelined one) is written at once.

What a command gives is a `jshost.replies.Result`; this module tells its kinds apart by type,
reports them to the `Ordering` and does what it says: write a reply, watch a future (and report
when it is done), drop one, close once the output is written. Other connections are never held
up: nothing here waits.

Malformed input gets Redis's protocol error reply, then the connection is closed once that reply
is written; more than the query buffer limit of unprocessed input closes it without a reply.
Before AUTH (with `--requirepass`) the parser applies Redis' pre-auth limits (10 arguments,
16 KiB bulks), so an unauthenticated client cannot make jshost buffer more than that.

**Output.** A client that does not read its replies holds little: its reading is paused once
the transport's buffer backs up, and the commands of one read are not all run at once either —
once the replies made since the last write pass `REPLY_BATCH_BYTES` (or the client's output
limit), the rest of the query buffer waits (`Ordering.output_full`) until they are written, so
a pipeline of 11 000 ``GET`` of a 1 MB value costs a few MB, not 11 GB. Redis's
``client-output-buffer-limit`` is checked then and at every write, for the client's class
(``pubsub`` once subscribed, else ``normal``): past the hard limit, or above the soft one for
its seconds, the client is closed (defaults: normal none, pubsub 32mb / 8mb for 60 s).

**Admission.** Before a connection gets a store session, the server may refuse it
(``maxclients``, protected mode): it is sent Redis's error and closed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, cast

from jshost.client_state import ClientState
from jshost.commands.client_cmd import INVALIDATE, MUTED, route_invalidation
from jshost.errors import ListenerErrors, ServerErrors
from jshost.listener_config import PUBSUB_OUTPUT_BUFFER_LIMIT as PUBSUB_OUTPUT_BUFFER_LIMIT
from jshost.listener_config import ListenerConfig
from jshost.listener_config import OutputBufferLimit as OutputBufferLimit
from jshost.ordering import BLOCKED, CLOSED, CLOSING, DROP, WATCH, WRITE, Do, Ordering
from jshost.replies import (
    NO_REPLY,
    CloseAfter,
    ErrorReply,
    Pending,
    Pipelined,
    Push,
    RawReply,
    Status,
)
from jshost.resp import (
    ProtocolError,
    QueryBufferLimitExceeded,
    RequestParser,
    encode_into,
)
from jshost.store import Session

if TYPE_CHECKING:
    from jshost.commands.dispatch import Dispatcher, ServerContext

log = logging.getLogger("jshost.server")


#: Replies made from one read before they must be written: past it, the rest of the query
#: buffer waits until the client has taken them (see "Output" in the module docstring).
REPLY_BATCH_BYTES: Final = 1 << 20

#: Reply types encoded alike in RESP2 and RESP3 (no protocol to look up).
_SAME_IN_BOTH: Final = frozenset({bytes, Status, int, ErrorReply})

#: The commands whose `LOAD` sub-command takes a library's code.
_LOAD_COMMANDS: Final = frozenset({b"RG.FUNCTION", b"TFUNCTION"})

class Connection(asyncio.Protocol):
    """The asyncio protocol of one client (see the module docstring)."""

    def __init__(
        self,
        ctx: ServerContext,
        dispatcher: Dispatcher,
        on_open: Callable[[Connection, asyncio.Transport], str | None],
        on_close: Callable[[Connection], None],
        *,
        config: ListenerConfig | None = None,
    ) -> None:
        self._ctx = ctx
        self._dispatcher = dispatcher
        self._on_open = on_open  # admits the client (None) or gives the error that refuses it
        self._on_close = on_close
        self._config = config = config or ListenerConfig()
        self._parser = RequestParser(query_buffer_limit=config.client_query_buffer_limit)
        self._order: Ordering[Pending] = Ordering()
        self._over_soft_limit_since: float | None = None
        self._writing_paused = False  # the transport's buffer is over its high-water mark
        self._out = bytearray()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._flush_scheduled = False
        self.client: ClientState | None = None
        self.writes = 0  # transport writes so far (replies are coalesced: about one per pass)
        self.last_active = self._loop.time()  # when the client last sent something (`timeout`)

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # (uvloop's are not subclasses)
        self._transport = transport
        refusal = self._on_open(self, transport)
        if refusal is not None:  # refused before it costs a store session
            self._order.lost()  # (nothing runs)
            transport.write(b"-%s\r\n" % refusal.encode())
            transport.close()
            return
        self.client = ClientState(
            ctx=self._ctx,
            session_factory=self._open_session,
            id=self._ctx.new_client_id(),
            peer=_address(transport.get_extra_info("peername")),
            local=_address(transport.get_extra_info("sockname")),
            fd=_fileno(transport),
            authenticated=self._ctx.requirepass is None,
        )
        self._parser.unauthenticated = not self.client.authenticated
        self._parser.check_bulk = self._check_bulk
        self._ctx.clients[self.client.id] = self  # (CLIENT LIST, KILL, TRACKING REDIRECT)

    def _open_session(self) -> Session:
        session = self._ctx.store.open_session()
        session.on_push = self._on_push
        if self.client is not None:
            session.peer = self.client.peer.encode()
        return session

    def data_received(self, data: bytes) -> None:
        self.last_active = self._loop.time()
        self._ctx.stats.net_input_bytes += len(data)
        try:
            self._parser.feed(data)
        except QueryBufferLimitExceeded as exc:
            log.debug("client %s: %s; closing", self._client_id(), exc)
            self.abort()
            return
        if self._order.runs_commands:
            self._process()

    def eof_received(self) -> bool | None:
        # The client half-closed: it is answered what it sent before (see `Ordering.eof`).
        order = self._order
        dropped = order.eof()
        if dropped is not None:
            _drop(dropped)
        if order.closable:
            self._write_out()
            return False
        return True  # kept open for writing until the replies due are in

    def pause_writing(self) -> None:
        # The client does not read its replies: stop reading its commands until it does.
        self._writing_paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()
        self._resume_after_output()

    def connection_lost(self, exc: Exception | None) -> None:
        for pending in self._order.lost():  # the replies are nobody's now
            _drop(pending)
        if self.client is not None:
            self._ctx.clients.pop(self.client.id, None)
            self.client.close_session()
        # No cycles left through this object (client -> session -> push handler -> self,
        # parser -> bulk check -> self): reference counting frees a closed connection at once
        # instead of the cyclic collector much later (a storm of short-lived clients would
        # otherwise grow the heap between collections).
        self.client = None
        self._parser.check_bulk = None
        self._on_close(self)

    def _check_bulk(self, argv: list[bytes], length: int) -> str | None:
        """Asked by the parser about a long bulk as its header arrives: the code of a library
        load over `library-max-code-size` is refused there, before it is buffered (then the
        connection closes, as after any protocol error: the bulk cannot be skipped unread)."""
        if len(argv) >= 2 and argv[0].upper() in _LOAD_COMMANDS and argv[1].upper() == b"LOAD":
            return self._ctx.host.code_size_problem(length)
        return None

    # --- processing ----------------------------------------------------------------------------

    def feed_commands(self, commands: Iterable[list[bytes]]) -> None:
        """Commands parsed elsewhere, as one batch (the native request path takes them from the
        front of the query buffer, e.g. with the parser's ``take``): they run before what the
        parser still holds, now as far as the ordering lets, the rest in their turn (behind a
        blocked command, pipelined replies or held output), exactly as commands read here."""
        order = self._order
        order.feed(commands)
        if order.runs_commands:
            self._process()

    def _process(self) -> None:
        """Run the commands the ordering lets run, in order, until none is left or the client
        must wait; do with each result what the ordering says."""
        client = self.client
        assert client is not None
        order = self._order
        parser = self._parser
        read = parser.get_command
        next_command = order.next
        dispatch = self._dispatcher.dispatch
        fast = self._dispatcher.fast_path  # the native call path (`jshost.fastpath`), or None
        pipelinable = functools.partial(self._dispatcher.can_pipeline, client)
        out = self._out
        bound = self._output_bound()
        try:
            while True:
                if len(out) > bound and self._hold_for_output():
                    break
                if parser.unauthenticated is client.authenticated:  # AUTH, RESET: in step
                    parser.unauthenticated = not client.authenticated
                try:
                    if not order.reads_now:
                        argv = next_command(read, pipelinable)
                    elif fast is None:
                        argv = read()
                    else:  # the calls at the head run natively; the first other command is ours
                        argv = fast.run(client, parser, out, bound)
                except ProtocolError as exc:
                    log.debug("client %d: %s; closing", client.id, exc.message)
                    if order.protocol_error(exc.reply) is WRITE:
                        self._append(exc.reply)
                    break
                if argv is None:
                    if fast is not None and len(out) > bound:
                        continue  # the native path stopped at the output bound: held above
                    break
                # A `Result`, told apart by exact type: the union is closed, and `kind is` costs
                # a third of an isinstance that misses (the type checker is told nothing here).
                result: Any = dispatch(client, argv)
                kind = type(result)
                if kind in _SAME_IN_BOTH:  # the most common replies first
                    if order.writes_now or order.reply(result) is WRITE:
                        encode_into(out, result)
                elif kind is RawReply:
                    if order.writes_now or order.reply(result) is WRITE:
                        out += result
                elif kind is Pipelined:
                    if order.pipelined(result) is WATCH:
                        result.future.add_done_callback(self._completed)
                elif kind is CloseAfter:
                    if order.close_after(result.reply) is WRITE:
                        self._append(result.reply)
                    break
                elif isinstance(result, asyncio.Future):
                    pending = Pending(result)
                    self._watch_or_drop(pending, order.blocking(pending))
                elif order.writes_now or order.reply(result) is WRITE:
                    self._append(result)
        finally:
            if order.state is CLOSING:
                self._close_after_output()
            elif self._out and not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)

    def _watch_or_drop(self, pending: Pending, do: Do) -> None:
        if do is WATCH:
            pending.future.add_done_callback(self._completed)
        elif do is DROP:
            _drop(pending)

    def _completed(self, _future: asyncio.Future[Any]) -> None:
        """A watched reply is in: write the replies now due, in order; once none is left, run
        the commands that waited for them."""
        order = self._order
        replies, watch = order.completed()
        for reply in replies:
            self._append(reply)
        if watch is not None:
            watch.future.add_done_callback(self._completed)
        elif order.runs_commands:
            self._process()
        # Sent now, not on the next pass: these replies have kept the client waiting already.
        self._flush_now()

    def _append(self, reply: Any) -> None:
        """Encode a reply (or a RawReply) into the output buffer, in the client's protocol."""
        if reply is NO_REPLY:
            return
        if type(reply) is RawReply:
            self._out += reply
        else:
            out = self._out
            mark = len(out)
            try:
                encode_into(out, reply, self.client.protocol if self.client else 2)
            except (TypeError, ValueError) as exc:  # a reply jshost cannot encode: a bug
                del out[mark:]
                log.exception("cannot encode a reply for client %s", self._client_id())
                encode_into(out, ErrorReply(ServerErrors.INTERNAL_ERROR.format(type(exc).__name__)))
        self._schedule_flush()

    def _on_push(self, push: Push) -> None:
        """A push for this client from the store (pub/sub, tracking): goes out with the next
        flush. An invalidation goes where the client's tracking sends it (CLIENT TRACKING
        REDIRECT, RESP2: `client_cmd.route_invalidation`)."""
        client = self.client
        if client is None or client.mute_pushes or self._order.state is CLOSED:
            return
        if push and push[0] == INVALIDATE:
            routed = route_invalidation(client, push)
            if routed is not None:
                target, message = routed
                deliver = self._ctx.push_to(target)
                if deliver is not None:
                    deliver(message if isinstance(message, Push) else Push(message))
            return
        client.note_push(push)
        if client.reply_flags & MUTED:
            return  # CLIENT REPLY OFF mutes everything the client would get
        self._append(push)

    # --- output backpressure (see "Output" in the module docstring) ----------------------------

    def _output_bound(self) -> int:
        """How many reply bytes may pile up unwritten before `_hold_for_output` looks."""
        limit = self._config.output_limit(self.client is not None and self.client.subscribed)
        return min(REPLY_BATCH_BYTES, limit.hard or REPLY_BATCH_BYTES,
                   limit.soft or REPLY_BATCH_BYTES)

    def _hold_for_output(self) -> bool:
        """The replies made since the last write passed the bound: close the client if it is
        over its output buffer limit, else keep the rest of its query buffer until they are
        written (`_resume_after_output`). True: stop processing."""
        transport = self._transport
        if transport is None or self._check_output_limit(transport, len(self._out)):
            return True
        self._order.output_full()
        return True

    def _resume_after_output(self) -> None:
        """The held replies are written (or handed to a transport that is not backed up): run
        the rest of the query buffer."""
        order = self._order
        if not order.output_held:
            return  # (not held, or already resumed)
        order.output_sent()
        if order.runs_commands:
            self._process()

    @property
    def holding_output(self) -> bool:
        """Whether this client's commands wait for its replies to be sent (or taken in)."""
        return self._order.output_held or self._writing_paused

    def output_size(self) -> int:
        """Reply bytes not yet sent to the client (Redis's `omem`, roughly)."""
        transport = self._transport
        pending = transport.get_write_buffer_size() if transport is not None else 0
        return len(self._out) + pending

    def deliver(self, push: Push) -> None:
        """A push routed here from another client's tracking (CLIENT TRACKING REDIRECT)."""
        client = self.client
        if client is None or self._order.state is CLOSED or client.reply_flags & MUTED:
            return
        self._append(push)
        self._schedule_flush()

    # --- output --------------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self._out:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush_now(self) -> None:
        """Write what is buffered at once (a flush already scheduled then finds nothing)."""
        if self._out or self._order.state >= CLOSING:
            self._write_out()

    def _flush(self) -> None:
        """The once-per-pass flush: write everything buffered; close afterwards if asked to."""
        self._flush_scheduled = False
        self._write_out()

    def _write_out(self) -> None:
        """Write the output buffer in one call; close the transport once the ordering may."""
        transport = self._transport
        order = self._order
        if transport is None or order.state is CLOSED:
            self._out = bytearray()
            return
        if self._out:
            # A new buffer rather than clear(): the transport may keep a view of the old one.
            data, self._out = self._out, bytearray()
            transport.write(data)
            self.writes += 1
            self._ctx.stats.net_output_bytes += len(data)
            if self._check_output_limit(transport):
                return
            if order.output_held and not self._writing_paused:
                self._loop.call_soon(self._resume_after_output)  # others get their turn first
        if order.closable:
            transport.close()  # after the write: asyncio sends buffered data first

    def _check_output_limit(self, transport: asyncio.Transport, unwritten: int = 0) -> bool:
        """A client past the output buffer limit of its class is closed at once (Redis's
        ``freeClientAsync``): one that does not read cannot make the server hoard its replies or
        every message of its channels. True when it was closed."""
        limit = self._config.output_limit(self.client is not None and self.client.subscribed)
        if limit.unlimited:
            return False
        pending = transport.get_write_buffer_size() + unwritten
        over_soft = bool(limit.soft) and pending > limit.soft
        if not over_soft:
            self._over_soft_limit_since = None
        elif self._over_soft_limit_since is None:
            self._over_soft_limit_since = time.monotonic()
        since = self._over_soft_limit_since
        if (limit.hard and pending > limit.hard) or (
            since is not None and time.monotonic() - since >= limit.soft_seconds
        ):
            log.warning(ListenerErrors.OUTPUT_LIMIT_CLOSED, self._client_id(), pending)
            self.abort()
            return True
        return False

    def _close_after_output(self) -> None:
        """The ordering is closing: read no more; close once the replies so far are written."""
        if self._transport is not None:
            self._transport.pause_reading()
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    # --- server side ---------------------------------------------------------------------------

    @property
    def blocked(self) -> bool:
        """Whether this client waits on a command's future."""
        return self._order.state is BLOCKED

    @property
    def waiting(self) -> asyncio.Future[Any] | None:
        """The future this client is blocked on, if any."""
        pending = self._order.blocked_on
        return pending.future if pending is not None else None

    def force_unblock(self, text: str) -> None:
        """Redis's `disconnectAllBlockedClients`: a blocked client gets `text` for the command
        it waits on, then its connection is closed."""
        if self._order.state is not BLOCKED:
            return
        dropped, due = self._order.shutdown()
        if dropped is not None:
            _drop(dropped)
        self._append(ErrorReply(text))
        for pending in due:
            pending.future.cancel()
        self._close_after_output()

    def shutdown(self) -> None:
        """Server shutdown: fail the command this client waits on, write, then close."""
        if self._order.state is CLOSED:
            return
        dropped, due = self._order.shutdown()
        if dropped is not None:
            _drop(dropped)
            self._append(ErrorReply(ServerErrors.SHUTTING_DOWN))
        for pending in due:  # answered "shutting down" in turn (see `Pending.reply`)
            pending.future.cancel()
        self._close_after_output()

    @property
    def idle_seconds(self) -> float:
        """Seconds since the client last sent something (CLIENT LIST's idle)."""
        return self._loop.time() - self.last_active

    def kill(self) -> None:
        """CLIENT KILL by another client: close now (a blocked command is dropped)."""
        if self._order.state is CLOSED:
            return
        for pending in self._order.lost():
            _drop(pending)
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, dropping unsent output."""
        for pending in self._order.lost():
            _drop(pending)
        if self._transport is not None:
            self._transport.abort()

    def set_query_buffer_limit(self, limit: int) -> None:
        """CONFIG SET client-query-buffer-limit reaches clients already connected too."""
        self._parser.query_buffer_limit = limit

    @property
    def idle_closable(self) -> bool:
        """Whether Redis's `timeout` may close this client when idle: not while it waits on a
        command or replies, nor while subscribed (Redis spares those too)."""
        client = self.client
        return client is not None and not self._order.due and not client.subscribed

    @property
    def client_id(self) -> str:
        return self._client_id()

    def _client_id(self) -> str:
        return str(self.client.id) if self.client is not None else "?"


def _drop(pending: Pending) -> None:
    """Stop waiting for a reply: a host future keeps running (its JS finishes); a store wait of
    ours (a task) is cancelled."""
    future = pending.future
    future.add_done_callback(_retrieve)
    if isinstance(future, asyncio.Task):
        future.cancel()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a dropped future's exception as seen (asyncio would log it otherwise)."""
    if not future.cancelled():
        future.exception()


def _fileno(transport: asyncio.BaseTransport) -> int:
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else -1


def _address(addr: Any) -> str:
    """`host:port` of a socket address (as CLIENT INFO shows it)."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr or "")
