"""One client connection: bytes in, commands to the dispatcher, replies out in order.

This module knows the Redis protocol and the rules of reply ordering, not what any command
does. Per connection it keeps:

* a `RequestParser` (sans-I/O, `jshost.resp`) fed with every read;
* a `ClientState`: protocol (2 or 3), auth, name, MULTI queue, pub/sub counts — the state the
  command modules read and change;
* an output buffer. Replies are encoded into it as commands run and the buffer is written
  **once per event-loop pass** (a `loop.call_soon` flush scheduled when it goes non-empty),
  so a pipeline of N commands read in one chunk leaves in one write.

Ordering, as in Redis: commands run in arrival order and each reply is appended before the next
command runs. When a command answers with a future (an `RG.FCALLASYNC` waiting on a promise, a
`BLPOP` waiting for data) the connection is *blocked*: later bytes keep arriving and stay in the
parser (the query buffer, bounded by its limit) without being executed — as Redis leaves a
blocked client's query buffer unprocessed — and processing resumes right after the future's
reply has been appended. Other connections are never held up: nothing here waits.

*Pipelined* replies (`Pipelined`: a command a remote store runs in order on a shared
connection, see `Session.submit`) do not block the client: the next commands
are run at once while they are pipelinable too (`Dispatcher.can_pipeline`), and every reply waits
its turn in `_inflight`; a command that is not pipelinable waits until the replies before it
are in, as behind a blocking one, and so does any command past `MAX_PIPELINED` replies due.
So a client's pipeline reaches the backend as a pipeline.

Malformed input gets Redis's protocol error reply, then the connection is closed once that reply
is written; more than the query buffer limit of unprocessed input closes it without a reply.
Before AUTH (with `--requirepass`) the parser applies Redis' pre-auth limits (10 arguments,
16 KiB bulks), so an unauthenticated client cannot make jshost buffer more than that.

**Output.** A client that does not read its replies holds little: its reading is paused once
the transport's buffer backs up, and the commands of one read are not all run at once either —
once the replies made since the last write pass `REPLY_BATCH_BYTES` (or the client's output
limit), the rest of the query buffer waits (`_output_held`) until they are written, so a
pipeline of 11 000 ``GET`` of a 1 MB value costs a few MB, not 11 GB. Redis's
``client-output-buffer-limit`` is checked then and at every write, for the client's class
(``pubsub`` once subscribed, else ``normal``): past the hard limit, or above the soft one for
its seconds, the client is closed (defaults: normal none, pubsub 32mb / 8mb for 60 s).

**Admission.** Before a connection gets a store session, the server may refuse it
(``maxclients``, protected mode): it is sent Redis's error and closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

from jshost.errors import ListenerErrors, ReplyError, ServerErrors
from jshost.listener_config import PUBSUB_OUTPUT_BUFFER_LIMIT as PUBSUB_OUTPUT_BUFFER_LIMIT
from jshost.listener_config import ListenerConfig
from jshost.listener_config import OutputBufferLimit as OutputBufferLimit
from jshost.replies import ErrorReply, Push, Status
from jshost.resp import (
    ProtocolError,
    QueryBufferLimitExceeded,
    RequestParser,
    encode_into,
)
from jshost.store import NO_REPLY, CommandInfo, Session

if TYPE_CHECKING:
    from jshost.commands.dispatch import Dispatcher, ServerContext

log = logging.getLogger("jshost.server")


class RawReply(bytes):
    """A reply already encoded for this client's protocol; written as it is.

    Used where the typed vocabulary of `jshost.replies` cannot say what Redis sends, e.g. the
    RESP2 null array ``*-1`` (BLPOP timeout, EXEC after a WATCH failure).
    """

    __slots__ = ()


class Pipelined:
    """The future reply of a pipelined command, and how to make the client's reply of its
    result (`shape`, applied on success)."""

    __slots__ = ("future", "shape")

    def __init__(self, future: asyncio.Future[Any], shape: Callable[[Any], Any] | None = None):
        self.future = future
        self.shape = shape

    def reply(self) -> Any:
        """The reply for the client, once `future` is done."""
        future = self.future
        if self.shape is None or future.cancelled() or future.exception() is not None:
            return _outcome(future)
        return self.shape(future.result())


#: Replies made from one read before they must be written: past it, the rest of the query
#: buffer waits until the client has taken them (see "Output" in the module docstring).
REPLY_BATCH_BYTES: Final = 1 << 20

#: The most pipelined replies one client may have due: past it, its next commands wait (in the
#: query buffer, as bytes) until they are in, so memory per client stays bounded.
MAX_PIPELINED: Final = 1024

#: The commands whose `LOAD` sub-command takes a library's code.
_LOAD_COMMANDS: Final = frozenset({b"RG.FUNCTION", b"TFUNCTION"})

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

    Its store session (and with it the id, which is the session's own on the embedded store)
    is opened on first use, not when the client connects: accepting a burst of connections
    stays cheap, and a client that never reaches the store never costs a session."""

    ctx: ServerContext
    #: Opens this client's store session (`session`, on first use).
    session_factory: Callable[[], Session]
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
    _id: int | None = None

    @property
    def session(self) -> Session:
        """The client's store session (opened now if it was not yet)."""
        session = self._session
        if session is None:
            session = self._session = self.session_factory()
        return session

    @property
    def id(self) -> int:
        """The id HELLO and CLIENT ID report (see `ServerContext.client_id`)."""
        if self._id is None:
            self._id = self.ctx.client_id(self.session)
        return self._id

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

    def reset_subscriptions(self) -> None:
        """Forget every subscription (RESET)."""
        self.subscriptions.clear()
        self.subscribed = False


class Connection(asyncio.Protocol):
    """The asyncio protocol of one client (see the module docstring for the rules)."""

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
        self._over_soft_limit_since: float | None = None
        # Output backpressure (see "Output" in the module docstring).
        self._output_held = False  # the rest of the query buffer waits for replies to be sent
        self._writing_paused = False  # the transport's buffer is over its high-water mark
        self._out = bytearray()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._flush_scheduled = False
        self._closing = False  # no more commands are run; close once the output is written
        self._closed = False  # connection_lost was called
        self._eof = False  # the client half-closed: close once everything due is answered
        self._waiting: asyncio.Future[Any] | None = None  # the command this client is blocked on
        self._owns_waiting = False  # the future is our own task (a store wait): cancel on close
        # Replies of pipelined commands still due, in order: `Pipelined` items, and the plain
        # replies of the commands run behind them. `_held` is a command that waits for them.
        self._inflight: deque[Any] = deque()
        self._watched: asyncio.Future[Any] | None = None  # the head's future, watched
        self._held: list[bytes] | None = None
        self._stalled = False  # processing waits until `_inflight` is empty
        self.client: ClientState | None = None
        self.writes = 0  # transport writes so far (replies are coalesced: about one per pass)
        self.last_active = self._loop.time()  # when the client last sent something (`timeout`)

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # (uvloop's are not subclasses)
        self._transport = transport
        refusal = self._on_open(self, transport)
        if refusal is not None:  # refused before it costs a store session
            self._closing = True
            transport.write(b"-%s\r\n" % refusal.encode())
            transport.close()
            return
        self.client = ClientState(
            ctx=self._ctx,
            session_factory=self._open_session,
            peer=_address(transport.get_extra_info("peername")),
            local=_address(transport.get_extra_info("sockname")),
            fd=_fileno(transport),
            authenticated=self._ctx.requirepass is None,
        )
        self._parser.unauthenticated = not self.client.authenticated
        self._parser.check_bulk = self._check_bulk

    def _open_session(self) -> Session:
        session = self._ctx.store.open_session()
        session.on_push = self._on_push
        return session

    def data_received(self, data: bytes) -> None:
        self.last_active = self._loop.time()
        try:
            self._parser.feed(data)
        except QueryBufferLimitExceeded as exc:
            log.debug("client %s: %s; closing", self._client_id(), exc)
            self.abort()
            return
        if (self._waiting is None and not self._stalled and not self._closing
                and not self._output_held):
            self._process()

    def eof_received(self) -> bool | None:
        # The client half-closed. Redis runs what it read before it sees the EOF, then closes
        # (a command still blocked is dropped). So here: pipelined replies still due, and the
        # commands read behind them, are answered first (`_close_if_done`); then, or at once
        # when there are none, the replies made so far are written and the connection closed.
        self._eof = True
        if not self._inflight and not self._stalled and not self._output_held:
            self._write_out()
            return False
        return True  # kept open for writing until `_close_if_done`

    def _close_if_done(self) -> None:
        """After a half-close: once no pipelined reply is due, close (dropping a command that
        blocks, as Redis does) after the replies made so far."""
        if not self._eof or self._inflight or self._stalled or self._closing or self._output_held:
            return
        self._drop_waiting()
        self._close_after_output()

    def _drop_waiting(self) -> bool:
        """Stop waiting for the blocked command's reply (a host future keeps running, its JS
        finishes; a store wait of ours is cancelled). Whether there was one."""
        waiting, self._waiting = self._waiting, None
        if waiting is None:
            return False
        waiting.add_done_callback(_retrieve)
        if self._owns_waiting:
            waiting.cancel()
        return True

    def pause_writing(self) -> None:
        # The client does not read its replies: stop reading its commands until it does.
        self._writing_paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()
        if self._output_held:
            self._resume_after_output()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = self._closing = True
        for item in self._inflight:  # the replies are nobody's now
            if type(item) is Pipelined and isinstance(item.future, asyncio.Task):
                item.future.cancel()  # a store wait of ours
        self._inflight.clear()
        self._held, self._stalled = None, False
        self._drop_waiting()
        if self.client is not None:
            self.client.close_session()
        # No cycles left through this object (client -> session -> push handler -> self, the
        # watched future -> callback -> self, parser -> bulk check -> self): reference counting
        # frees a closed connection at once instead of the cyclic collector much later (a storm
        # of short-lived clients would otherwise grow the heap between collections).
        self.client, self._watched = None, None
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

    def _process(self) -> None:
        """Run the buffered commands in order until they run out or one blocks the client."""
        client = self.client
        assert client is not None
        parser = self._parser
        dispatcher = self._dispatcher
        dispatch = dispatcher.dispatch
        out = self._out
        inflight = self._inflight
        bound = self._output_bound()
        try:
            while True:
                if len(out) > bound and self._hold_for_output():
                    break
                argv, self._held = self._held, None
                if argv is None:
                    if parser.unauthenticated is client.authenticated:  # AUTH, RESET: in step
                        parser.unauthenticated = not client.authenticated
                    try:
                        argv = parser.get_command()
                    except ProtocolError as exc:
                        log.debug("client %d: %s; closing", client.id, exc.message)
                        self._queue_or_append(exc.reply)
                        self._close_after_output()
                        return
                    if argv is None:
                        break
                if inflight:
                    if len(inflight) >= MAX_PIPELINED or not dispatcher.can_pipeline(client, argv):
                        self._held = argv  # runs once the replies before it are in
                        self._stalled = True
                        break
                    if not self._queue(dispatch(client, argv)):
                        break
                    continue
                result = dispatch(client, argv)
                kind = type(result)
                if kind is Pipelined:
                    self._queue(result)
                elif kind is RawReply:
                    out += result
                elif kind is bytes or kind is Status or kind is int or kind is ErrorReply:
                    encode_into(out, result)  # encoded alike in RESP2 and RESP3
                elif result is NO_REPLY:
                    pass
                elif isinstance(result, asyncio.Future):
                    self._block(result)
                    break
                else:
                    self._append(result)
                if client.close_after_reply:
                    self._close_after_output()
                    break
        finally:
            if self._out and not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)

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
        self._output_held = True
        return True

    def _resume_after_output(self) -> None:
        """The held replies are written (or handed to a transport that is not backed up): run
        the rest of the query buffer."""
        if not self._output_held:
            return  # (already resumed)
        self._output_held = False
        if self._closing or self._closed:
            return
        if self._waiting is None and not self._stalled:
            self._process()
        self._close_if_done()

    @property
    def holding_output(self) -> bool:
        """Whether this client's commands wait for its replies to be sent (or taken in)."""
        return self._output_held or self._writing_paused

    def output_size(self) -> int:
        """Reply bytes not yet sent to the client (Redis's `omem`, roughly)."""
        transport = self._transport
        pending = transport.get_write_buffer_size() if transport is not None else 0
        return len(self._out) + pending

    # --- pipelined replies ---------------------------------------------------------------------

    def _queue(self, result: Any) -> bool:
        """Put a reply (or a future of one) behind the pipelined replies still due; False when
        it is a future of a command that blocks, which stops the processing until it is in."""
        inflight = self._inflight
        blocks = False
        if type(result) is not Pipelined and isinstance(result, asyncio.Future):
            result, blocks = Pipelined(result), True
            self._stalled = True
        inflight.append(result)
        if type(inflight[0]) is Pipelined and self._watched is None:
            self._watched = inflight[0].future
            self._watched.add_done_callback(self._pipelined_ready)
        return not blocks

    def _queue_or_append(self, reply: Any) -> None:
        if self._inflight:
            self._inflight.append(reply)
        else:
            self._append(reply)

    def _pipelined_ready(self, _future: asyncio.Future[Any]) -> None:
        """The first pipelined reply is in: send every reply that is due, in order; once none is
        left, run the commands that waited for them."""
        self._watched = None
        inflight = self._inflight
        while inflight:
            head = inflight[0]
            if type(head) is Pipelined:
                if not head.future.done():
                    self._watched = head.future
                    head.future.add_done_callback(self._pipelined_ready)
                    return
                inflight.popleft()
                self._append(head.reply())
            else:
                inflight.popleft()
                self._append(head)
        self._stalled = False
        if not self._closing and self._waiting is None:
            self._process()
        self._close_if_done()
        self._flush_now()

    def _block(self, future: asyncio.Future[Any]) -> None:
        """Hold this client until `future` gives the reply of its current command."""
        self._waiting = future
        self._owns_waiting = isinstance(future, asyncio.Task)
        future.add_done_callback(self._resumed)

    def _resumed(self, future: asyncio.Future[Any]) -> None:
        """The blocking command finished: append its reply, then run what queued up behind."""
        if future is not self._waiting:
            _retrieve(future)  # the client went away (or was shut down): drop the reply
            return
        self._waiting = None
        self._append(_outcome(future))
        if not self._closing:
            self._process()
        self._close_if_done()
        # Sent now, not on the next pass: this reply has kept the client waiting already.
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
        """A push for this client from the store (pub/sub): goes out with the next flush."""
        client = self.client
        if client is None or client.mute_pushes or self._closed:
            return
        client.note_push(push)
        self._append(push)

    # --- output --------------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self._out:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush_now(self) -> None:
        """Write what is buffered at once (a flush already scheduled then finds nothing)."""
        if self._out or self._closing:
            self._write_out()

    def _flush(self) -> None:
        """The once-per-pass flush: write everything buffered; close afterwards if asked to."""
        self._flush_scheduled = False
        self._write_out()

    def _write_out(self) -> None:
        """Write the output buffer in one call."""
        transport = self._transport
        if transport is None or self._closed:
            self._out = bytearray()
            return
        if self._out:
            # A new buffer rather than clear(): the transport may keep a view of the old one.
            data, self._out = self._out, bytearray()
            transport.write(data)
            self.writes += 1
            if self._check_output_limit(transport):
                return
            if self._output_held and not self._writing_paused:
                self._loop.call_soon(self._resume_after_output)  # others get their turn first
        if self._closing and self._waiting is None and not self._inflight:
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
        """Stop running commands; close once the replies so far are written."""
        self._closing = True
        if self._transport is not None:
            self._transport.pause_reading()
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    # --- server side ---------------------------------------------------------------------------

    @property
    def blocked(self) -> bool:
        """Whether this client waits on a command's future."""
        return self._waiting is not None

    @property
    def waiting(self) -> asyncio.Future[Any] | None:
        """The future this client is blocked on, if any."""
        return self._waiting

    def force_unblock(self, text: str) -> None:
        """Redis's `disconnectAllBlockedClients`: a blocked client gets `text` for the command
        it waits on, then its connection is closed."""
        if self._closed or not self._drop_waiting():
            return
        self._append(ErrorReply(text))
        self._close_after_output()

    def shutdown(self) -> None:
        """Server shutdown: fail the command this client waits on, write, then close."""
        if self._closed:
            return
        if self._drop_waiting():
            self._append(ErrorReply(ServerErrors.SHUTTING_DOWN))
        for item in self._inflight:  # answered "shutting down" in turn (see Pipelined.reply)
            if type(item) is Pipelined:
                item.future.cancel()
        self._close_after_output()

    def abort(self) -> None:
        """Close at once, dropping unsent output."""
        self._closing = True
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
        return (client is not None and self._waiting is None and not self._inflight
                and not client.subscribed)

    @property
    def client_id(self) -> str:
        return self._client_id()

    def _client_id(self) -> str:
        return str(self.client.id) if self.client is not None else "?"


def _outcome(future: asyncio.Future[Any]) -> Any:
    """The reply a finished future stands for: its result, or its error as an error reply."""
    if future.cancelled():
        return ErrorReply(ServerErrors.SHUTTING_DOWN)
    exc = future.exception()
    if exc is None:
        return future.result()
    if isinstance(exc, ReplyError):
        return ErrorReply(exc.text)
    log.error("a blocked command failed", exc_info=exc)
    return ErrorReply(ServerErrors.INTERNAL_ERROR.format(type(exc).__name__))


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
