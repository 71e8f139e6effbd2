"""Commands that change whether the server may write: REPLICAOF / SLAVEOF, and those that may
move used memory past `maxmemory` or back (FLUSHALL, FLUSHDB).

They run on the store as they are (the embedded store records the role itself; a backend
replicates for real, when `admin-commands` lets REPLICAOF through: `guard`), and once the reply is
in, the host's gates look again (`jshost.host.gates`): a role change is acted on at once, without
waiting for a poll. CONFIG SET and CONFIG RESETSTAT do the same (`gears.config`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jshost.commands.role_change import became_replica
from jshost.commands.store_cmds import then

if TYPE_CHECKING:
    from jshost.commands.dispatch import Handler
    from jshost.client_state import ClientState


def replicaof(client: ClientState, argv: list[bytes]) -> Any:
    """``REPLICAOF host port | NO ONE`` (and ``SLAVEOF``). A primary that is to become a
    replica first unblocks its clients and aborts JS's waiting calls (`role_change`), as Redis
    does before it changes anything."""
    gates = client.ctx.host.gates
    if _names_a_primary(argv) and not gates.replica:
        became_replica(client.ctx)

    def changed(reply: Any) -> Any:
        gates.role_changed()
        return reply

    return then(forward_typed(client, argv), changed)


def _names_a_primary(argv: list[bytes]) -> bool:
    """Whether REPLICAOF's arguments name a primary with a valid port (Redis checks the port
    before it changes anything; NO ONE names none)."""
    if len(argv) != 3 or (argv[1].lower(), argv[2].lower()) == (b"no", b"one"):
        return False
    port = argv[2]
    return port.isdigit() and int(port) <= 65535


def memory_changing(client: ClientState, argv: list[bytes]) -> Any:
    """A command after which `is_oom` must be asked again (FLUSHALL, FLUSHDB, CONFIG SET ...)."""
    store = client.ctx.store

    def changed(reply: Any) -> Any:
        store.forget_server_state()
        return reply

    return then(forward_typed(client, argv), changed)


def forward_typed(client: ClientState, argv: list[bytes]) -> Any:
    dispatcher = client.ctx.dispatcher
    assert dispatcher is not None
    return dispatcher.forward_typed(client, argv)


HANDLERS: dict[bytes, Handler] = {
    b"replicaof": replicaof,
    b"slaveof": replicaof,
    b"flushall": memory_changing,
    b"flushdb": memory_changing,
}
