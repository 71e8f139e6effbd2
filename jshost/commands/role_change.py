"""What becoming a replica does to waiting work, before anything else happens.

Call `became_replica(ctx)` when this server turns into a replica (REPLICAOF / SLAVEOF `<host>
<port>`), *before* the command reaches a backend Redis: as Redis core does first, every blocked
client connection (its own BLPOP, an RG.FCALLASYNC / TFCALLASYNC waiting for a promise, WAIT,
...) gets `UNBLOCKED force unblock ...` and is closed; then, as RedisGears' `on_role_changed`,
every tf `callAsync` still waiting is aborted (its promise rejects with `Command was aborted`).
Aborting before the backend hears of it keeps the backend's own `UNBLOCKED` reply on jshost's
dedicated connections from reaching JS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jshost import errors

if TYPE_CHECKING:
    from jshost.commands.dispatch import ServerContext


def became_replica(ctx: ServerContext) -> None:
    """The change to replica (see the module docstring)."""
    ctx.unblock_clients(errors.UNBLOCKED_ROLE_CHANGED)
    ctx.host.js_commands.abort_waiting()
