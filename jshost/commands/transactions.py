"""MULTI / EXEC / DISCARD / WATCH, with jshost's own commands allowed in the queue.

The queue lives in the connection's `ClientState` (the dispatcher appends to it and answers
``+QUEUED``), not in the store, because RG.FCALL & co. must be queued too and run at EXEC with
blocking denied.

WATCH: the store session keeps the watched keys (fakeredis does, as Redis does), so WATCH and
UNWATCH go straight to it. At EXEC, if WATCH was used since the last EXEC/DISCARD/UNWATCH,
jshost sends the session an *empty* ``MULTI`` + ``EXEC``: the store answers null when a watched
key changed (and forgets the watches either way). On null, EXEC answers null (RESP2 ``*-1``);
otherwise the queued commands run one by one, synchronously,
in one pass of the event loop — nothing else runs meanwhile, so the transaction is atomic for
every client of this jshost. Blocked clients whose keys became ready are served after it.

    MULTI            -> +OK
    SET k v          -> +QUEUED
    RG.FCALL l f 0   -> +QUEUED
    EXEC             -> *2 +OK <f's reply or error>
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from jshost.commands.store_cmds import NULL_ARRAY_RESP2
from jshost.errors import CAN_NOT_BLOCK_CLIENT, ReplyError, ServerErrors
from jshost.replies import NO_REPLY, OK, ErrorReply, Immediate, RawReply, Result
from jshost.resp import encode

if TYPE_CHECKING:
    from jshost.client_state import ClientState
    from jshost.commands.dispatch import Handler


def multi(client: ClientState, argv: list[bytes]) -> Result:
    """``MULTI``: start queueing."""
    if client.multi is not None:
        raise ReplyError(ServerErrors.MULTI_NESTED)
    client.multi = []
    client.multi_dirty = False
    return OK


def discard(client: ClientState, argv: list[bytes]) -> Result:
    """``DISCARD``: drop the queue and the watches."""
    if client.multi is None:
        raise ReplyError(ServerErrors.DISCARD_WITHOUT_MULTI)
    _end(client)
    _unwatch(client)
    return OK


def watch(client: ClientState, argv: list[bytes]) -> Result:
    """``WATCH key ...``: recorded by the store session (refused inside MULTI). A remote
    session keeps watches on its own backend connection, so it is awaited."""
    if client.multi is not None:
        raise ReplyError(ServerErrors.WATCH_IN_MULTI)
    if _remote(client):
        return asyncio.ensure_future(_watch_remote(client, argv))
    reply = client.session.call(argv)
    client.watching = client.watching or reply == OK
    return reply


async def _watch_remote(client: ClientState, argv: list[bytes]) -> Immediate:
    reply = await client.session.execute(argv)
    client.watching = client.watching or reply == OK
    return reply


def unwatch(client: ClientState, argv: list[bytes]) -> Result:
    """``UNWATCH``: forget the watched keys (queued like any command inside MULTI)."""
    client.watching = False
    if _remote(client):
        return asyncio.ensure_future(client.session.execute(argv))
    return client.session.call(argv)


def _remote(client: ClientState) -> bool:
    """Whether the client's session is on a real Redis (not the in-process store)."""
    return not client.ctx.store_in_process


def exec_(client: ClientState, argv: list[bytes]) -> Result:
    """``EXEC``: run the queue atomically; null if a watched key changed; EXECABORT if a
    command was refused while queueing."""
    if client.multi is None:
        raise ReplyError(ServerErrors.EXEC_WITHOUT_MULTI)
    queued, dirty = client.multi, client.multi_dirty
    _end(client)
    session = client.session
    if dirty:
        _unwatch(client)
        raise ReplyError(ServerErrors.EXECABORT)
    if client.watching:
        client.watching = False
        if _remote(client):
            return asyncio.ensure_future(_exec_watched_remote(client, queued))
        began = session.call([b"MULTI"])
        if isinstance(began, ErrorReply):
            return began
        if session.call([b"EXEC"]) is None:  # a watched key was touched
            return NULL_ARRAY_RESP2 if client.protocol == 2 else None
    return _run_queue(client, queued)


async def _exec_watched_remote(client: ClientState, queued: list[list[bytes]]) -> Any:
    """EXEC after WATCH on a real Redis: the watch check is a round trip on the client's own
    backend connection; then the queue runs as on the embedded store."""
    session = client.session
    began = await session.execute([b"MULTI"])
    if isinstance(began, ErrorReply):
        return began
    if await session.execute([b"EXEC"]) is None:  # a watched key was touched
        return NULL_ARRAY_RESP2 if client.protocol == 2 else None
    return _run_queue(client, queued)


def _run_queue(client: ClientState, queued: list[list[bytes]]) -> Result:
    dispatcher = client.ctx.dispatcher
    assert dispatcher is not None
    client.in_exec = True
    try:
        replies = [_settled(dispatcher.run(client, command)) for command in queued]
    finally:
        client.in_exec = False
    store = client.ctx.store
    store.serve_blocked()
    reply = _array(replies, client.protocol)
    if any(store.needs_fence(command) for command in queued):
        # A real Redis sends the keyspace events of the queued writes on another connection:
        # their sync triggers must have run before the client gets EXEC's reply.
        return asyncio.ensure_future(_after_fence(client, reply))
    return reply


async def _after_fence(client: ClientState, reply: Immediate) -> Immediate:
    await client.ctx.store.fence()
    return reply


def _end(client: ClientState) -> None:
    client.multi = None
    client.multi_dirty = False


def _unwatch(client: ClientState) -> None:
    if client.watching:
        client.watching = False
        if _remote(client):
            asyncio.ensure_future(client.session.execute([b"UNWATCH"]))
        else:
            client.session.call([b"UNWATCH"])


def _settled(reply: Any) -> Any:
    """A reply inside EXEC; nothing may wait there (host calls run with blocking denied)."""
    if isinstance(reply, asyncio.Future):  # defensive: a handler that ignored `in_exec`
        reply.cancel()
        return ErrorReply(CAN_NOT_BLOCK_CLIENT)
    return None if reply is NO_REPLY else reply


def _array(replies: list[Any], protocol: int) -> Immediate:
    """EXEC's array; encoded here when an element is already raw (a RESP2 null array)."""
    if not any(type(reply) is RawReply for reply in replies):
        return replies
    parts = [b"*%d\r\n" % len(replies)]
    parts += [r if type(r) is RawReply else encode(r, protocol) for r in replies]
    return RawReply(b"".join(parts))


HANDLERS: dict[bytes, Handler] = {
    b"multi": multi,
    b"exec": exec_,
    b"discard": discard,
    b"watch": watch,
    b"unwatch": unwatch,
}
