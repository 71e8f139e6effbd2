"""Connection commands: HELLO, AUTH, PING, ECHO, QUIT, RESET, CLIENT ..., SHUTDOWN.

They change the client's own state (protocol, authentication, name) and answer as Redis 7.2
does. SELECT is not here: the selected database is the store session's, so SELECT simply goes to
the store (`store_cmds`), and host calls read `session.db`.

Authentication knows one user, `default`, whose password is `--requirepass` (none: any password
is accepted for `default`, as for Redis's `nopass` user).

Wire examples::

    HELLO 3            -> %7 server redis version 7.2.4 proto 3 id 5 mode standalone role master
                          modules []                   (RESP2: the same as a flat *14 array)
    AUTH wrong         -> -WRONGPASS invalid username-password pair or user is disabled.
    PING               -> +PONG        (RESP2 in pub/sub mode: *2 $4 pong $0 "")
    CLIENT GETNAME     -> $-1 / _      (no name)
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING, Final

from jshost import errors
from jshost.commands.client_cmd import SUBCOMMANDS, client_line
from jshost.errors import ReplyError, ServerErrors
from jshost.replies import NO_REPLY, OK, CloseAfter, RawReply, Result, Status, Verbatim
from jshost.resp import PONG_REPLY

if TYPE_CHECKING:
    from jshost.client_state import ClientState
    from jshost.commands.dispatch import Handler

PONG: Final = RawReply(PONG_REPLY)  # the same bytes in RESP2 and RESP3
RESET: Final = Status(b"RESET")
DEFAULT_USER: Final = b"default"
# Redis `string2ll`: no sign other than `-`, no spaces, no leading zeros.
_LL = re.compile(rb"0|-?[1-9][0-9]{0,18}")


def hello(client: ClientState, argv: list[bytes]) -> Result:
    """``HELLO [protover [AUTH username password] [SETNAME clientname]]`` (networking.c)."""
    version = 0
    i = 1
    if len(argv) >= 2:
        parsed = _string2ll(argv[1])
        if parsed is None:
            raise ReplyError(ServerErrors.HELLO_PROTOCOL_NOT_INTEGER)
        if parsed not in (2, 3):
            raise ReplyError(ServerErrors.NOPROTO)
        version = parsed
        i = 2
    credentials: tuple[bytes, bytes] | None = None
    name: bytes | None = None
    while i < len(argv):
        more = len(argv) - 1 - i
        option = argv[i].lower()
        if option == b"auth" and more >= 2:
            credentials = (argv[i + 1], argv[i + 2])
            i += 3
        elif option == b"setname" and more >= 1:
            name = _valid_name(argv[i + 1])
            i += 2
        else:
            raise ReplyError(ServerErrors.hello_syntax(argv[i].decode("utf-8", "surrogateescape")))
    if credentials is not None:
        _authenticate(client, *credentials)
    if not client.authenticated:
        raise ReplyError(ServerErrors.HELLO_NOAUTH)
    if name is not None:
        _set_name(client, name)
    if version:
        client.protocol = version
    return {
        b"server": b"redis",
        b"version": client.ctx.redis_version.encode(),
        b"proto": client.protocol,
        b"id": client.id,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }


def auth(client: ClientState, argv: list[bytes]) -> Result:
    """``AUTH [username] password`` (acl.c)."""
    if len(argv) > 3:
        raise ReplyError(ServerErrors.SYNTAX_ERROR)
    if len(argv) == 2:
        if client.ctx.requirepass is None:
            raise ReplyError(ServerErrors.AUTH_WITHOUT_PASSWORD)
        _authenticate(client, DEFAULT_USER, argv[1])
    else:
        _authenticate(client, argv[1], argv[2])
    return OK


def ping(client: ClientState, argv: list[bytes]) -> Result:
    """``PING [message]``: +PONG or the message; a RESP2 subscriber gets ``["pong", msg]``."""
    if len(argv) > 2:
        raise ReplyError(errors.wrong_arity("ping"))
    if client.protocol == 2 and client.subscribed:
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return PONG if len(argv) == 1 else argv[1]


def echo(client: ClientState, argv: list[bytes]) -> Result:
    """``ECHO message``: the message as a bulk string."""
    return argv[1]


def quit_(client: ClientState, argv: list[bytes]) -> Result:
    """``QUIT``: +OK, then the connection closes (later pipelined commands are not run)."""
    return CloseAfter(OK)


def reset(client: ClientState, argv: list[bytes]) -> Result:
    """``RESET``: leave MULTI, unwatch, unsubscribe (silently), db 0, RESP2, no name, and log
    out when a password is required; answers +RESET."""
    client.multi = None
    client.multi_dirty = False
    client.watching = False
    client.mute_pushes = True  # Redis unsubscribes without notifying
    try:
        client.session.call([b"RESET"])
    finally:
        client.mute_pushes = False
    client.reset_subscriptions()
    client.protocol = 2
    client.name = None
    client.authenticated = client.ctx.requirepass is None
    return RESET


def client_cmd(client: ClientState, argv: list[bytes]) -> Result:
    """``CLIENT SETNAME|GETNAME|ID|INFO`` here; the other sub-commands in `client_cmd`."""
    sub = argv[1].lower()
    if sub == b"setname":
        _set_name(client, _valid_name(argv[2]))
        return OK
    if sub == b"getname":
        return client.name
    if sub == b"id":
        return client.id
    if sub == b"info":
        return Verbatim(client_info_line(client), "txt")
    handler = SUBCOMMANDS.get(sub)
    if handler is None:  # (the command table knows every sub-command jshost does)
        return _forward(client, argv)
    return handler(client, argv)


def shutdown(client: ClientState, argv: list[bytes]) -> Result:
    """``SHUTDOWN [...]``: a graceful server shutdown; like Redis, no reply (the connection
    closes)."""
    client.ctx.request_shutdown()
    return NO_REPLY


def client_info_line(client: ClientState) -> bytes:
    """The `CLIENT INFO` line: the client's own CLIENT LIST line."""
    return client_line(client, client.ctx.clients.get(client.id))


# --- helpers --------------------------------------------------------------------------------


def _authenticate(client: ClientState, user: bytes, password: bytes) -> None:
    """Log `client` in as `user`, or raise WRONGPASS (a failed attempt changes nothing)."""
    expected = client.ctx.requirepass
    ok = user == DEFAULT_USER and (
        expected is None or hmac.compare_digest(password, expected.encode())
    )
    if not ok:
        raise ReplyError(ServerErrors.WRONGPASS)
    client.authenticated = True


def _valid_name(name: bytes) -> bytes:
    """Redis `validateClientName`: printable ASCII without spaces (`!` to `~`)."""
    if any(byte < 0x21 or byte > 0x7E for byte in name):
        raise ReplyError(ServerErrors.CLIENT_NAME_INVALID)
    return name


def _set_name(client: ClientState, name: bytes) -> None:
    """Set (or, with an empty name, clear) the name; the store session learns it too, so that
    `CLIENT LIST` there shows it."""
    client.name = name or None
    client.session.call([b"CLIENT", b"SETNAME", name])


def _forward(client: ClientState, argv: list[bytes]) -> Result:
    dispatcher = client.ctx.dispatcher
    assert dispatcher is not None
    return dispatcher.forward(client, argv)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _string2ll(data: bytes) -> int | None:
    if not _LL.fullmatch(data):
        return None
    value = int(data)
    return value if -(2**63) <= value < 2**63 else None


HANDLERS: dict[bytes, Handler] = {
    b"hello": hello,
    b"auth": auth,
    b"ping": ping,
    b"echo": echo,
    b"quit": quit_,
    b"reset": reset,
    b"client": client_cmd,
    b"shutdown": shutdown,
}
