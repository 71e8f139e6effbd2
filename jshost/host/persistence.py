"""What a server keeps across restarts, for its kind of store (`jshost serve`).

- A store that is a server of its own (a real Redis, the managed Valkey) keeps the data, and
  the libraries too (`RedisArchive`), followed across the jshost instances in front of it
  (`LibraryFollower`).
- An in-process store (the embedded one) with a directory: libraries in `<dir>/libraries.json`
  (`DirectoryArchive`) and the data in `<dir>/data.jsonl` on `SAVE`/`BGSAVE` and at a graceful
  shutdown (`Store.snapshots`).
- An in-process store without one: nothing (memory only).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from jshost.host.archive import (
    CHANGES_CHANNEL,
    DirectoryArchive,
    LibraryFollower,
    RedisArchive,
    SavedLibrary,
)

if TYPE_CHECKING:
    from jshost.host import Host

log = logging.getLogger("jshost.persistence")


class Persistence:
    """Sets up what a server keeps across restarts (see the module docstring)."""

    def __init__(self, host: Host, directory: Path | None = None) -> None:
        self.host = host
        self.directory = directory
        self.follower: LibraryFollower | None = None

    @property
    def saves_data(self) -> bool:
        """Whether `SAVE` is jshost's (a directory was given: `jshost serve` gives one only with
        an in-process store)."""
        return self.directory is not None

    async def start(self) -> None:
        """Load what was kept and start keeping changes."""
        host = self.host
        store = host.store
        snapshots = store.snapshots
        if not store.in_process:
            redis_archive = RedisArchive(host.session(0))
            host.archive = redis_archive
            loaded = host.restore(redis_archive.load_all())
            self.follower = LibraryFollower(redis_archive, store.open_session, host.follow,
                                            lambda: list(host.libraries),
                                            copy_of=lambda name: saved_copy(host, name))
            await self.follower.start()
            log.info("%d libraries loaded from Redis; following changes on %s", loaded,
                     CHANGES_CHANNEL.decode())
        elif self.directory is not None and snapshots is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            keys = snapshots.load(self.directory)
            directory_archive = DirectoryArchive(self.directory)
            host.archive = directory_archive
            loaded = host.restore(directory_archive.load_all())
            log.info("%d keys and %d libraries loaded from %s", keys, loaded, self.directory)

    def save(self) -> int:
        """Snapshot the data (an in-process store with a directory); returns the keys written."""
        snapshots = self.host.store.snapshots
        if self.directory is None or snapshots is None:
            return 0
        count = snapshots.save(self.directory)
        log.info("saved %d keys to %s", count, self.directory / "data.jsonl")
        return count

    async def stop(self) -> None:
        """At a graceful shutdown: a last snapshot."""
        if self.follower is not None:
            self.follower.stop()
        self.save()


def saved_copy(host: Host, name: str) -> SavedLibrary | None:
    """What it takes to load library `name` of `host` again (None: it has none so named)."""
    lib = host.libraries.get(name)
    if lib is None:
        return None
    return SavedLibrary(lib.name, lib.era, lib.code, lib.config_text, lib.user)
