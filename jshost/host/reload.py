"""The library part of `DEBUG RELOAD` / `DEBUG LOADAOF`: what RedisGears did when Redis loaded
its data again (docs/architecture.md, "DEBUG RELOAD").

1. Loading starts: keyspace events are ignored (`Triggers.loading`) and every library is
   dropped, its stream positions (the last entry each trigger read of each stream) kept aside.
2. Each library is loaded again, in its order, as a fresh, non-upgrade load with its saved user
   and CONFIG: a new JS heap, counters and statistics from nothing. Its top-level code runs
   under `db-loading-lock-redis-timeout` (tf) or `lock-redis-timeout` (rg). Each of its stream
   triggers then gets its positions back at once, so LIST shows them before anything is read.
3. A library that fails to load ends the load: the error is logged as RedisGears logged it, the
   libraries loaded so far stay, the others are gone (from the archive too), and the caller's
   `on_failure` runs (the embedded store empties its data there, as Redis' failed load does).
4. Loading ends: events count again, and every stream trigger scans for its streams and goes on
   after its position (the entries that were in flight are not delivered again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from jshost.errors import ReloadErrors, ReplyError
from jshost.host.archive import SavedLibrary
from jshost.host.library import Library, StreamId, StreamState
from jshost.host.registry import Registry
from jshost.host.streams import successor
from jshost.host.triggers import Triggers

log = logging.getLogger("jshost")

#: (library, stream trigger, stream) → the id of the last entry it read.
Positions = dict[tuple[str, str, bytes], StreamId]


def reload_libraries(registry: Registry, triggers: Triggers,
                     on_failure: Callable[[], None] = lambda: None) -> str | None:
    """Drop and load again every library (see the module docstring); the load error of the
    library that failed, or None."""
    saved = [SavedLibrary(lib.name, lib.era, lib.code, lib.config_text, lib.user)
             for lib in registry.libraries.values()]
    positions = _positions(registry)
    triggers.loading = True
    registry.loading_data = True
    try:
        for name in list(registry.libraries):
            registry.delete(name, persist=False)
        for index, lib in enumerate(saved):
            try:
                registry.load(lib.code, lib.config_text, False, lib.era, lib.user, persist=False)
            except ReplyError as exc:
                log.error(ReloadErrors.LOAD_LOG.format(error=exc.text))
                if registry.archive is not None:
                    for gone in saved[index:]:
                        registry.archive.remove(gone.name)
                on_failure()
                return exc.text
            _restore_positions(registry.libraries[lib.name], positions)
        return None
    finally:
        registry.loading_data = False
        triggers.loading = False
        triggers.streams.resume_all(keep_positions=True)


def _positions(registry: Registry) -> Positions:
    return {(lib.name, trigger.name, key): state.last_read
            for lib in registry.libraries.values()
            for trigger in lib.stream_triggers.values()
            for key, state in trigger.streams.items() if state.last_read is not None}


def _restore_positions(lib: Library, positions: Positions) -> None:
    for trigger in lib.stream_triggers.values():
        for (lib_name, trigger_name, key), last in positions.items():
            if (lib_name, trigger_name) == (lib.name, trigger.name):
                state = trigger.streams[key] = StreamState(last_read=last, dirty=True)
                state.next_id = successor(last)
