"""The host's commands: library management, calls, and the `redisgears_2.*` settings.

=====================================  ============================================  ==========
command                                grammar                                        reply
=====================================  ============================================  ==========
RG.FUNCTION / TFUNCTION LOAD|DEL|LIST  `grammar.parse_function_command`               +OK / LIST
RG.FUNCTION / TFUNCTION DEBUG ...      `debug_cmds.function_debug`                    per sub
RG.FCALL / TFCALL                      `grammar.parse_call`; never waits              the value
RG.FCALLASYNC / TFCALLASYNC            the same; may block *this* client on a promise the value
RG.CONFIG_GET / TCONFIG_GET name...    = CONFIG GET redisgears_2.<name>...            map
RG.CONFIG_SET / TCONFIG_SET n v ...    = CONFIG SET redisgears_2.<n> <v> ...          +OK
CONFIG GET pattern...                  the store's matches, the host's settings and   map
                                       the listener's (`jshost.listener_config`)
CONFIG SET name value ...              redisgears_2.* and the listener's here, the    +OK
                                       rest to the store
=====================================  ============================================  ==========

Errors are RedisGears' texts, sent as they are (no ``ERR `` added): ``-Unknown library foo``.
Inside MULTI/EXEC (`ClientState.in_exec`) calls run with blocking denied, so they never
return a future. Other CONFIG sub-commands go to the store unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jshost import errors, listener_config
from jshost.commands.debug_cmds import function_debug
from jshost.commands.grammar import (
    DeleteArgs,
    LoadArgs,
    check_arity,
    parse_call,
    parse_function_command,
)
from jshost.commands.store_cmds import then
from jshost.errors import Era, ReplyError, ServerErrors
from jshost.host.listing import list_libraries
from jshost.replies import OK, ErrorReply, Result
from jshost.settings import PREFIX

if TYPE_CHECKING:
    from jshost.client_state import ClientState
    from jshost.commands.dispatch import Handler

_PREFIX_BYTES = PREFIX.encode()
#: The ACL user libraries are loaded as (jshost knows only `default`).
USER = "default"


def function_command(era: Era, command: str) -> Handler:
    """RG.FUNCTION (rg) / TFUNCTION (tf): LOAD, DEL/DELETE, LIST."""

    def handler(client: ClientState, argv: list[bytes]) -> Result:
        check_arity(command, len(argv))
        host = client.ctx.host
        if argv[1].lower() == b"debug":
            return function_debug(host, era, command, argv[2:])
        parsed = parse_function_command(argv[1:], era)
        if isinstance(parsed, LoadArgs):
            if parsed.debug:
                raise ReplyError(errors.DEBUG_SERVER_ADDRESS_NOT_SPECIFIED)
            host.load(parsed.code, parsed.config_text, parsed.replace, era, USER)
            return OK
        if isinstance(parsed, DeleteArgs):
            host.delete(parsed.library)
            return OK
        return list_libraries(host, era, parsed)

    return handler


def call_command(era: Era, command: str, *, asynchronous: bool) -> Handler:
    """RG.FCALL / RG.FCALLASYNC (rg) and TFCALL / TFCALLASYNC (tf)."""

    def handler(client: ClientState, argv: list[bytes]) -> Result:
        check_arity(command, len(argv))
        call = parse_call(argv[1:], era)
        return client.ctx.host.calls.call(
            era,
            call,
            asynchronous=asynchronous,
            blocking_allowed=not client.in_exec,
            db=client.session.db,
        )

    return handler


# --- settings -------------------------------------------------------------------------------


def config_get_command(command: str) -> Handler:
    """RG.CONFIG_GET / TCONFIG_GET ``name ...``: CONFIG GET of ``redisgears_2.<name> ...``."""

    def handler(client: ClientState, argv: list[bytes]) -> Result:
        if len(argv) < 2:
            raise ReplyError(errors.wrong_arity(command))
        names = [PREFIX + _text(name) for name in argv[1:]]
        return _pairs(client.ctx.host.settings.get(*names))

    return handler


def config_set_command(command: str) -> Handler:
    """RG.CONFIG_SET / TCONFIG_SET ``name value ...``: CONFIG SET of the prefixed names."""

    def handler(client: ClientState, argv: list[bytes]) -> Result:
        if len(argv) < 3 or len(argv) % 2 == 0:
            raise ReplyError(errors.wrong_arity(command))
        words = [_text(word) for word in argv[1:]]
        pairs = [(PREFIX + name, value) for name, value in zip(words[::2], words[1::2])]
        client.ctx.host.settings.set_many(pairs)
        return OK

    return handler


def config(client: ClientState, argv: list[bytes]) -> Result:
    """CONFIG: GET and SET see the host's settings too; other sub-commands go to the store."""
    sub = argv[1].lower()
    if sub == b"get":
        return _config_get(client, argv)
    if sub == b"set":
        return then(_config_set(client, argv), _forget_server_state(client))
    if sub == b"resetstat":  # jshost's counters (INFO # Stats), then the store's
        client.ctx.commands_processed = 0
        client.ctx.stats.reset()
        return then(_forward_typed(client, argv), _forget_server_state(client))
    return _forward(client, argv)


def _forget_server_state(client: ClientState) -> Callable[[Any], Any]:
    """After CONFIG SET (maxmemory, say) or RESETSTAT, the store's remembered OOM answer goes."""
    store = client.ctx.store

    def forget(reply: Any) -> Any:
        store.forget_server_state()
        return reply

    return forget


def _config_get(client: ClientState, argv: list[bytes]) -> Result:
    """``CONFIG GET pattern ...``: the store's matches, then the host's and the listener's (a
    pattern may match all three, e.g. ``*``). The store's values of the listener's names (its
    own port, password, ...) are left out: they are not the ones clients deal with."""
    patterns = [_text(p) for p in argv[2:]]
    ours = _pairs(client.ctx.host.settings.get(*patterns))
    ours.update(_pairs(client.ctx.listener.get(patterns)))
    hide = _BACKEND_SECRETS if not client.ctx.store_in_process else frozenset()

    def merge(theirs: Any) -> Any:
        if isinstance(theirs, ErrorReply) or not isinstance(theirs, (dict, list)):
            return theirs
        merged = dict(zip(theirs[::2], theirs[1::2])) if isinstance(theirs, list) else theirs
        merged = {k: v for k, v in merged.items()
                  if k.lower() not in hide and not listener_config.owns(k)}
        return {**merged, **ours}

    return then(_forward_typed(client, argv), merge)


def _config_set(client: ClientState, argv: list[bytes]) -> Result:
    """``CONFIG SET name value ...``, all or nothing: the listener's names and the host's are
    set first (in that order) and put back if a later part is refused; the rest goes to the
    store. The listener's names never reach the store."""
    if len(argv) % 2:
        raise ReplyError(errors.wrong_arity("config|set"))
    pairs = list(zip(argv[2::2], argv[3::2]))
    listener = [(_text(n), _text(v)) for n, v in pairs if listener_config.owns(n)]
    pairs = [(n, v) for n, v in pairs if not listener_config.owns(n)]
    if not client.ctx.store_in_process:
        for name, _ in pairs:
            if name.lower() in _BACKEND_SECRETS:
                return ErrorReply(ServerErrors.BACKEND_SECRET.format(name=_text(name).lower()))
    ours = [(_text(n), _text(v)) for n, v in pairs if n.lower().startswith(_PREFIX_BYTES)]
    rest = [word for n, v in pairs if not n.lower().startswith(_PREFIX_BYTES) for word in (n, v)]
    if not ours and not listener:
        return _forward(client, argv)
    config = client.ctx.listener
    settings = client.ctx.host.settings
    listener_before = config.get(name for name, _ in listener)
    config.set_many(listener)
    previous = settings.get(*(name for name, _ in ours))
    try:
        settings.set_many(ours)
    except ReplyError:
        config.set_many(listener_before)
        raise
    if not rest:
        return OK

    def undo_on_error(reply: Any) -> Any:
        if isinstance(reply, ErrorReply):
            settings.set_many(previous)
            config.set_many(listener_before)
        return reply

    # Typed: a remote store's raw error bytes would not be seen as a refusal.
    return then(_forward_typed(client, [argv[0], argv[1], *rest]), undo_on_error)


# --- helpers --------------------------------------------------------------------------------


def _pairs(pairs: list[tuple[str, str]]) -> dict[bytes, bytes]:
    """CONFIG GET's reply: a map (RESP3) that RESP2 clients get as a flat array."""
    return {_bytes(name): _bytes(value) for name, value in pairs}


def _text(word: bytes) -> str:
    # Setting names are ASCII; other bytes survive the round trip into error texts.
    return word.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


#: Backend settings a client of jshost may neither read nor change: jshost's own credentials.
#: (`requirepass` is the listener's: jshost's own password, as in Redis.)
_BACKEND_SECRETS = frozenset({b"masterauth", b"masteruser",
                              b"tls-key-file-pass", b"tls-client-key-file-pass"})
#: ACL subcommands that reveal or change users (and so jshost's own) on a backend Redis.
_ACL_ALLOWED_ON_BACKEND = frozenset({b"whoami", b"cat", b"genpass", b"help"})


def acl(client: ClientState, argv: list[bytes]) -> Result:
    """``ACL ...``: on a real Redis only the subcommands that cannot show or change users."""
    sub = argv[1].lower() if len(argv) > 1 else b""
    if not client.ctx.store_in_process and sub not in _ACL_ALLOWED_ON_BACKEND:
        return ErrorReply(ServerErrors.BACKEND_SECRET.format(name="acl " + _text(sub)))
    return _forward(client, argv)


def _forward_typed(client: ClientState, argv: list[bytes]) -> Result:
    dispatcher = client.ctx.dispatcher
    assert dispatcher is not None
    return dispatcher.forward_typed(client, argv)


def _forward(client: ClientState, argv: list[bytes]) -> Result:
    dispatcher = client.ctx.dispatcher
    assert dispatcher is not None
    return dispatcher.forward(client, argv)


def _family(era: Era, function: str, call: str) -> dict[bytes, Callable[..., Any]]:
    return {
        function.encode(): function_command(era, function),
        call.encode(): call_command(era, call, asynchronous=False),
        f"{call}async".encode(): call_command(era, f"{call}async", asynchronous=True),
    }


HANDLERS: dict[bytes, Handler] = {
    **_family("rg", "rg.function", "rg.fcall"),
    **_family("tf", "tfunction", "tfcall"),
    b"rg.config_get": config_get_command("rg.config_get"),
    b"rg.config_set": config_set_command("rg.config_set"),
    b"tconfig_get": config_get_command("tconfig_get"),
    b"tconfig_set": config_set_command("tconfig_set"),
    b"config": config,
    b"acl": acl,
}
