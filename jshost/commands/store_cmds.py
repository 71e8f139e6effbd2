"""Every command jshost does not answer itself goes, unchanged, to the client's store session.

The store answers in RESP3 types (`jshost.store.base`); `encode_into` downgrades them for a
RESP2 client. For a few commands that is not what Redis sends a RESP2 client, because Redis
builds a differently *shaped* reply there, so `resp2_reply` reshapes those (checked against a
real redis-server, byte for byte):

==================================================  ================  ========================
command                                             RESP3             RESP2
==================================================  ================  ========================
ZRANGE* / ZREVRANGE* / ZUNION / ZINTER / ZDIFF      ``[[m, s], ...]``  ``[m, s, ...]`` (flat)
WITHSCORES, ZRANDMEMBER WITHSCORES, ZPOPMIN/MAX
with a count, HRANDFIELD WITHVALUES
XREAD / XREADGROUP                                  ``%{key: entries}`` ``[[key, entries], ...]``
BLPOP & co. timed out, XREAD* / LMPOP / ZMPOP       ``_``             ``*-1`` (null *array*)
found nothing
GEOPOS of a missing member                          ``_`` in the list ``*-1`` in the list
==================================================  ================  ========================

How a command runs depends on the store:

* embedded (in process): synchronously (`Session.call`) — the fast path; then blocked clients
  whose keys became ready are served, as Redis does after each command. A blocking command
  (BLPOP, ...) that finds its data is answered the same way; one that has to wait (and WAIT,
  XREAD BLOCK) is awaited (`Session.execute`) in a task, and only its own connection waits;
* remote: a stateless, non-blocking command whose keyspace events no trigger waits for is
  *pipelined* (`Session.submit`): written at once, its reply taken in turn
  (`jshost.replies.Pipelined`), so the client's next commands go out without waiting.
  Any other command is awaited, and its connection waits for the reply. A RESP3 client gets
  Redis's reply bytes unchanged (raw); a RESP2 client gets the typed reply re-encoded (and
  reshaped as above).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from jshost.replies import NO_REPLY, Immediate, Pipelined, RawReply, Result, StoreReply
from jshost.resp import encode

if TYPE_CHECKING:
    from jshost.client_state import ClientState
    from jshost.commands.dispatch import ServerContext

NULL_ARRAY_RESP2: Final = RawReply(b"*-1\r\n")
#: Blocking commands not tried at once: WAIT answers 0 at once only after its timeout (DEBUG
#: SLEEP: OK), and XREAD's `$` must mean "the last entry when the command started waiting".
_WAIT_AT_ONCE: Final = frozenset({b"wait", b"waitaof", b"debug", b"xread", b"xreadgroup"})


class Forwarder:
    """Runs a command in the client's store session and returns its reply for the client."""

    def __init__(self, ctx: ServerContext) -> None:
        self._table = ctx.table
        self._in_process = ctx.store_in_process
        self._pipelines = ctx.store.pipelines
        self._serve_blocked = ctx.store.serve_blocked

    def __call__(self, client: ClientState, argv: list[bytes]) -> Result:
        """The reply, or a future of it when the client must wait."""
        if client.in_exec:
            # Inside EXEC nothing may wait (Redis runs blocking commands there as non-blocking)
            # and blocked clients are served once the whole transaction has run.
            return self._shaped(client, argv, client.session.call(argv))
        if self._in_process:
            blocking = self._table.is_blocking(argv)
            if not blocking or argv[0].lower() not in _WAIT_AT_ONCE:
                # A blocking command that finds its data runs now too, in arrival order; one
                # that would wait answers null here, without side effects, and waits below.
                reply = client.session.call(argv)
                self._serve_blocked()
                if not blocking or reply is not None:
                    return self._shaped(client, argv, reply) if client.protocol == 2 else reply
        elif self._pipelines:
            raw = client.protocol == 3
            future = client.session.submit(argv, raw)
            if future is not None:
                shape = _raw_reply if raw else functools.partial(resp2_reply, argv)
                return Pipelined(future, shape)
        return asyncio.ensure_future(self._execute(client, argv))

    def can_pipeline(self, client: ClientState, argv: list[bytes]) -> bool:
        """Whether the store would pipeline `argv` (see `Dispatcher.can_pipeline`)."""
        if not self._pipelines or client.in_exec:
            return False
        return client.session.pipelinable(argv)

    async def _execute(self, client: ClientState, argv: list[bytes]) -> Immediate:
        if client.protocol == 3 and not self._in_process:
            # A real Redis speaks RESP3 to jshost too: its reply bytes go to a RESP3 client
            # unchanged.
            raw = await client.session.execute_raw(argv)
            return RawReply(raw) if raw else NO_REPLY
        reply = await client.session.execute(argv)
        return self._shaped(client, argv, reply)

    @staticmethod
    def _shaped(client: ClientState, argv: list[bytes], reply: StoreReply) -> Immediate:
        return resp2_reply(argv, reply) if client.protocol == 2 else reply


# --- RESP2 reshaping ------------------------------------------------------------------------


def _raw_reply(raw: bytes) -> Any:
    """A remote store's reply bytes, for a RESP3 client as they are."""
    return RawReply(raw) if raw else NO_REPLY


def _flatten_pairs(reply: Any) -> Any:
    if type(reply) is list and reply and all(type(item) is list for item in reply):
        return [value for pair in reply for value in pair]
    return reply


def _map_as_pairs(reply: Any) -> Any:
    if reply is None:
        return NULL_ARRAY_RESP2
    if type(reply) is dict:
        return [[key, value] for key, value in reply.items()]
    return reply


def _null_array(reply: Any) -> Any:
    return NULL_ARRAY_RESP2 if reply is None else reply


def _geopos(reply: Any) -> Any:
    if type(reply) is not list or None not in reply:
        return reply
    parts = [b"*%d\r\n" % len(reply)]
    parts += [b"*-1\r\n" if item is None else encode(item, 2) for item in reply]
    return RawReply(b"".join(parts))


_RESP2_FIXES: Final[dict[bytes, Callable[[Any], Any]]] = {
    **dict.fromkeys(
        (
            b"zrange",
            b"zrangebyscore",
            b"zrevrange",
            b"zrevrangebyscore",
            b"zunion",
            b"zinter",
            b"zdiff",
            b"zrandmember",
            b"zpopmin",
            b"zpopmax",
            b"hrandfield",
        ),
        _flatten_pairs,
    ),
    **dict.fromkeys(
        (b"blpop", b"brpop", b"bzpopmin", b"bzpopmax", b"blmpop", b"bzmpop", b"lmpop", b"zmpop"),
        _null_array,
    ),
    b"xread": _map_as_pairs,
    b"xreadgroup": _map_as_pairs,
    b"geopos": _geopos,
}


def resp2_reply(argv: list[bytes], reply: Any) -> Any:
    """`reply` (RESP3-typed, from the store) reshaped as Redis answers `argv` over RESP2."""
    fix = _RESP2_FIXES.get(argv[0].lower())
    return reply if fix is None else fix(reply)


def then(result: Result, fn: Callable[[Any], Result]) -> Result:
    """Apply `fn` to a reply now, or to a future's reply when it arrives (a new future)."""
    if not isinstance(result, asyncio.Future):
        return fn(result)
    return asyncio.ensure_future(_then(result, fn))


async def _then(future: asyncio.Future[Any], fn: Callable[[Any], Result]) -> Result:
    return fn(await future)
