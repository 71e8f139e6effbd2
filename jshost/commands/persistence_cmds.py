"""`SAVE` / `BGSAVE` for the embedded store with `--dir` (fakeredis' own SAVE writes nothing).

Without a directory (or with a remote store) the command goes to the store unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jshost.replies import OK, Result, Status

if TYPE_CHECKING:
    from jshost.client_state import ClientState
    from jshost.commands.dispatch import Handler

BACKGROUND_SAVING_STARTED = Status(b"Background saving started")


def save(client: ClientState, argv: list[bytes]) -> Result:
    """``SAVE`` → ``+OK`` once the snapshot is written; ``BGSAVE`` writes it the same way (the
    snapshot of the embedded store is fast and must not race with later writes)."""
    persistence = client.ctx.persistence
    if persistence is None or not persistence.saves_data:
        return client.ctx.dispatcher.forward(client, argv)  # type: ignore[union-attr]
    persistence.save()
    return OK if argv[0].lower() == b"save" else BACKGROUND_SAVING_STARTED


HANDLERS: dict[bytes, Handler] = {b"save": save, b"bgsave": save}
