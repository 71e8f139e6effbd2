"""``DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]`` and ``DEBUG LOADAOF``: the data is loaded again,
and so are the libraries (`Host.reload`). Other DEBUG sub-commands go to the store as they are.

* The embedded store has no RDB or AOF: its data is left alone (it would come back unchanged),
  so both commands are the library part only; `appendonly` does not matter. RELOAD's options
  change nothing here, and any other option is refused with Redis' text. If a library fails to
  load, the data is emptied, as after Redis' failed load, and the client gets Redis' error.
* A backend (DEBUG passes there with `enable-debug-command yes`: `guard`) reloads for real.
  Meanwhile keyspace events are ignored (a replayed AOF notifies every write again), up to a
  fence after the backend's reply; then the libraries are loaded again. The backend's error, if
  any, is the reply; its data cannot be emptied after a failing library, so only the library
  part of a failed load applies (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from jshost.errors import ReloadErrors
from jshost.replies import OK, ErrorReply, Result

if TYPE_CHECKING:
    from jshost.commands.dispatch import Handler
    from jshost.client_state import ClientState

RELOAD_OPTIONS: Final = frozenset((b"merge", b"noflush", b"nosave"))


def debug(client: ClientState, argv: list[bytes]) -> Result:
    sub = argv[1].lower() if len(argv) > 1 else b""
    dispatcher = client.ctx.dispatcher
    assert dispatcher is not None
    if sub not in (b"reload", b"loadaof"):
        return dispatcher.forward(client, argv)
    failed = ReloadErrors.RELOAD_FAILED if sub == b"reload" else ReloadErrors.LOADAOF_FAILED
    host = client.ctx.host
    if client.ctx.store_in_process:
        if sub == b"reload" and any(o.lower() not in RELOAD_OPTIONS for o in argv[2:]):
            return ErrorReply(ReloadErrors.RELOAD_OPTIONS)

        def empty_data() -> None:
            host.session(0).call([b"FLUSHALL"])

        return OK if host.reload(empty_data) is None else ErrorReply(failed)
    return asyncio.ensure_future(_backend_reload(client, argv, failed))


async def _backend_reload(client: ClientState, argv: list[bytes], failed: str) -> Any:
    host = client.ctx.host
    triggers = host.triggers
    triggers.loading = True
    try:
        reply = await client.session.execute(argv)
        await host.store.fence()  # the events of the replay have all arrived, and been ignored
    finally:
        triggers.loading = False
    host.store.forget_server_state()
    problem = host.reload()
    if isinstance(reply, ErrorReply) or problem is None:
        return reply
    return ErrorReply(failed)


HANDLERS: dict[bytes, Handler] = {b"debug": debug}
