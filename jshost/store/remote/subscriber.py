"""The connection that receives a remote store's keyspace events, and the fences in their stream.

`RemoteStore.start_keyspace_events()` opens one more connection that `PSUBSCRIBE`s to
`__keyevent@*__:*` and `SUBSCRIBE`s to this store's *fence* channel `jshost:fence:<id>`. Every
event is handed to the store's listener (`on_event(origin, db, event, key)`) in the order Redis
sent it, where `origin` is `ATOMIC_SECTION` for the events caused inside an atomic section (the
host's own JS writes, which it mutes) and None for the rest. Redis delivers a connection's
pub/sub messages in the order the commands ran, so a `PUBLISH` on the fence channel marks a
point in the stream of events:

* An atomic section is *opened* in the event stream lazily, by its first command on the sync
  connection (a section that never touches the store -- a function returning a constant -- costs
  no round trip): a fence naming the section's start is pipelined ahead of that command. While
  no keyspace trigger exists (`StoreListener.tags_sections`), sections send no fences at all.
  `end_atomic` of an opened section publishes a fence naming its end without waiting for the
  reply (read with the next sync round trip). The subscriber tags what comes between the two
  fences `ATOMIC_SECTION`: the section's own events, by their position in Redis's stream, not
  by when they are read. Events read meanwhile are queued and delivered once the section is
  over.
* After a client's command whose keys may interest a trigger (`StoreListener.wants_command`),
  the session publishes a fence and awaits its return (`fence`): by then every event of that
  command has been delivered -- sync keyspace triggers have run -- before the client gets its
  reply.
* Events caused by clients that bypass jshost (or another jshost instance) are delivered as
  they arrive, with no such guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from jshost.errors import BackendErrors
from jshost.replies import ErrorReply, Push
from jshost.resp import NEED_DATA, ProtocolError, ReplyParser, encode_command
from jshost.store.remote.connect import BackendError, connect, failure_text, receive

if TYPE_CHECKING:
    from jshost.store.remote.store import RemoteStore

LOG = logging.getLogger("jshost.store.remote")

_KEYEVENT_PATTERN: Final = b"__keyevent@*__:*"
_KEYEVENT_PREFIX: Final = b"__keyevent@"
_FENCE: Final = object()  # a queue item: (_FENCE, number)


class EventSubscriber:
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
                connect, store.url, store.db, b"jshost-events", store.timeout,
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
                    data = receive(sock, store.buffer)
                    if not data:
                        raise ConnectionResetError(0, "connection closed by the server")
                    parser.feed(data)
                elif isinstance(value, ErrorReply):
                    raise BackendError(BackendErrors.ERR_EVENTS_LOST.format(reason=value))
                elif type(value) is Push and value and value[0] in (b"psubscribe", b"subscribe"):
                    confirmed += 1
        except (OSError, ProtocolError) as exc:
            sock.close()
            raise BackendError(
                BackendErrors.ERR_EVENTS_LOST.format(reason=failure_text(exc))) from None
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
        self.store.events_closed(self)
        LOG.info("keyspace event connection closed: %s", reason)

    # -- reading -------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            data = receive(sock, self.store.buffer)
            while isinstance(sock, ssl.SSLSocket) and sock.pending():
                data += receive(sock, self.store.buffer)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._lost(failure_text(exc))
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
        last section fence met (`ATOMIC_SECTION` between a section's two fences, else None)."""
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
        """The PUBLISH that marks a section's start (`tag` ATOMIC_SECTION) or end (None) in the
        event stream: the events after it are tagged `tag`. The caller sends it on the sync
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
        publish = self.store.shared_connection(0).submit(
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
        if self._delivering or self.store.atomic_depth:
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
                listener = self.store.listener
                if listener is None:
                    continue
                origin, db, event, key = item
                try:
                    listener.on_event(origin, db, event, key)
                except Exception:
                    LOG.exception("keyspace event listener failed on %r", item)
        finally:
            self._delivering = False
