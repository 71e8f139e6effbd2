"""RedisGears' internal commands, and their rows in a backend's `COMMAND` replies.

``_rg_internals.function`` and ``_rg_internals.update_stream_last_read_id`` exist in RedisGears
for its replication stream and AOF. jshost has neither, so it refuses them to every client in
both eras with tf's text (rg let anyone run them, which would let a client load code as any
user; docs/compatibility.md). Redis's arity check comes first (the dispatcher's, from the
command table, where they have tf's registration).

The embedded store lists their rows in `COMMAND` itself (`jshost.store.embedded.extra_commands`);
a backend Redis does not know them, so `COMMAND`, `COMMAND INFO` and `COMMAND COUNT` replies from
it get jshost's rows merged in here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jshost import errors
from jshost.commands.store_cmds import then
from jshost.errors import ReplyError
from jshost.replies import ErrorReply
from jshost.store.command_table import INTERNAL_COMMANDS, CommandInfo

if TYPE_CHECKING:
    from jshost.commands.dispatch import Handler
    from jshost.client_state import ClientState


def internal_command(client: ClientState, argv: list[bytes]) -> Any:
    """Any `_rg_internals.*` command that passed the arity check."""
    raise ReplyError(errors.INTERNAL_COMMAND_REFUSED)


def command(client: ClientState, argv: list[bytes]) -> Any:
    """`COMMAND [INFO|COUNT ...]`: a backend's reply with jshost's internal rows merged in."""
    dispatcher = client.ctx.dispatcher
    assert dispatcher is not None
    sub = argv[1].lower() if len(argv) > 1 else None
    if client.ctx.store_in_process or sub not in (None, b"info", b"count"):
        return dispatcher.forward(client, argv)
    rows = _rows(client)

    def merge(reply: Any) -> Any:
        if isinstance(reply, ErrorReply):
            return reply
        if sub == b"count" and isinstance(reply, int):
            return reply + len(rows)
        if not isinstance(reply, list):
            return reply
        if sub is None or len(argv) == 2:  # COMMAND, and COMMAND INFO with no names: all
            return [*reply, *(row.to_resp3() for row in rows.values())]
        asked = (rows.get(name.lower()) for name in argv[2:])
        return [entry if entry is not None or row is None else row.to_resp3()
                for entry, row in zip(reply, asked, strict=False)]

    return then(dispatcher.forward_typed(client, argv), merge)


def _rows(client: ClientState) -> dict[bytes, CommandInfo]:
    table = client.ctx.table
    rows = {name.encode(): table.get(name) for name in INTERNAL_COMMANDS}
    return {name: row for name, row in rows.items() if row is not None}


HANDLERS: dict[bytes, Handler] = {
    **{name.encode(): internal_command for name in INTERNAL_COMMANDS},
    b"command": command,
}
