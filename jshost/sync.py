"""A synchronous facade over `Host`, for code without a running event loop (CLI, pytest plugin).

Each call runs a private event loop until its result is ready, so background work (coroutines,
`run_on_background`, promise jobs) makes progress exactly while a call is in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from jshost.errors import Era
from jshost.host import Host
from jshost.host.listing import list_libraries
from jshost.host.requests import ListArgs
from jshost.replies import Reply, StoreReply
from jshost.settings import Settings
from jshost.store import Session, Store


class SyncHost:
    """`Host` with blocking methods. Raises `jshost.errors.ReplyError` like the async API."""

    def __init__(self, store: Store | None = None, settings: Settings | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.host = Host(store, settings)
        self.host.use_loop(self.loop)
        self._client: Session | None = None

    def load(self, code: str, config_text: str | None = None, replace: bool = False,
             era: Era = "rg") -> str:
        """Load a library; returns its name."""
        name = self.host.load(code, config_text, replace, era)
        self.run_pending()
        return name

    def delete(self, name: str) -> None:
        self.host.delete(name)

    def fcall(self, library: str, function: str, keys: Sequence[bytes | str] = (),
              args: Sequence[bytes | str] = (), era: Era = "rg") -> Reply:
        """`RG.FCALL`: the reply (a pending promise is an error, as in Redis)."""
        return self.loop.run_until_complete(self.host.fcall(library, function, keys, args,
                                                            era=era))

    def fcall_async(self, library: str, function: str, keys: Sequence[bytes | str] = (),
                    args: Sequence[bytes | str] = (), era: Era = "rg") -> Reply:
        """`RG.FCALLASYNC`: returns once the function's promise settles."""
        return self.loop.run_until_complete(self.host.fcall_async(library, function, keys,
                                                                  args, era=era))

    def list(self, era: Era = "rg", with_code: bool = False, verbosity: int = 0,
             library: str | None = None) -> list[dict[str, Any]]:
        """The LIST reply, as maps."""
        return list_libraries(self.host, era, ListArgs(with_code, verbosity, library))

    def execute(self, *args: bytes | str) -> StoreReply:
        """A plain command against the store, as a client would send it (so its writes fire
        keyspace triggers; the host's own JS sessions are muted)."""
        if self._client is None:
            self._client = self.host.store.open_session()
        words = [a.encode() if isinstance(a, str) else a for a in args]
        return self.loop.run_until_complete(self._client.execute(words))

    def run_pending(self) -> None:
        """Let queued background work run (one pass of the loop)."""
        self.loop.run_until_complete(asyncio.sleep(0))

    def close(self) -> None:
        self.host.close()
        self.loop.close()

    def __enter__(self) -> SyncHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
