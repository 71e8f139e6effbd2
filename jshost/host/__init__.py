"""The library host: libraries, their functions and triggers, behind one facade.

`Host` knows nothing of sockets: the server, the CLI and the pytest plugin drive the same object.
It builds its parts and hands each what it needs (no part sees the whole host):

* `Limits` (`limits`): what the settings allow JS: deadlines, memory, reply size;
* `Gates` (`gates`): whether the server may write now (replica role, maxmemory), asked by every
  entry point;
* `AtomicSection` (`atomic`): "locked": a sync function, a `block()` section or a library's top
  level runs start to end with nothing else reaching the store;
* `Scheduler` (`scheduler`): the event loop, background slices (coroutines, `run_on_background`,
  promise settlement) each under its own deadline, the job queue (`jobs`), idle libraries;
* `Registry` (`registry`): the libraries (`library`, `prologue`, `natives`, `archive`);
* `Calls` (`calls`): `RG.FCALL` / `RG.FCALLASYNC`, values converted by `conversions`;
* `JSCommands` (`js_commands`): what JS sends to the store;
* `Triggers` (`triggers`, `streams`, `lease`): the store's listener.

JS runs on the asyncio event-loop thread, through the engine boundary (`jshost.engine`). The
core call path (`call`) is synchronous and returns either a reply or, for a result still
pending, an `asyncio.Future` of the reply; `fcall` / `fcall_async` wrap it for awaiting callers.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from jshost.engine import new_engine
from jshost.errors import Era
from jshost.host.archive import LibraryArchive, SavedLibrary
from jshost.host.atomic import AtomicSection
from jshost.host.calls import Calls
from jshost.host.gates import Gates
from jshost.host.js_commands import JSCommands
from jshost.host.library import Library
from jshost.host.limits import Limits
from jshost.host.natives import Natives, prelude_texts
from jshost.host.registry import Registry
from jshost.host.reload import reload_libraries
from jshost.host.requests import CallArgs
from jshost.host.scheduler import Scheduler
from jshost.host.triggers import Triggers
from jshost.replies import Reply
from jshost.settings import Settings
from jshost.store import EmbeddedStore, Session, Store


class Host:
    """Loads RedisGears libraries and runs their functions against a store."""

    def __init__(self, store: Store | None = None, settings: Settings | None = None) -> None:
        self.store: Store = store if store is not None else EmbeddedStore()
        self.settings = settings if settings is not None else Settings()
        self.commands = self.store.command_info()
        self.gates = Gates(self.store)
        self.engine = new_engine(int(self.settings["js-maxmemory"]))
        libraries: dict[str, Library] = {}
        self.limits = Limits(self.settings, self.engine, libraries)
        self.section = AtomicSection(self.store, self.limits.section_limit)
        self.scheduler = Scheduler(self.section, self.limits, self.settings)
        # The store sessions JS commands run through: their writes fire no keyspace trigger.
        muted: weakref.WeakSet[Any] = weakref.WeakSet()
        self.js_commands = JSCommands(self.store, self.section, self.scheduler, muted)
        self.registry = Registry(libraries, self.settings, self.engine, self.section,
                                 self.scheduler, self.limits, self._natives_for, prelude_texts)
        self.calls = Calls(self.registry, self.section, self.scheduler, self.limits, self.gates)
        self.triggers = Triggers(self.registry, self.section, self.scheduler, self.limits,
                                 self.store, self.js_commands.session, muted, self.gates)
        self.registry.observers.append(self.limits.heap)  # (tf charges come and go)
        self.registry.observers.append(self.triggers)

    def _natives_for(self, lib: Library) -> dict[str, Any]:
        natives = Natives(lib, self.section, self.scheduler, self.js_commands, self.gates)
        return natives.as_dict()

    # --- libraries ------------------------------------------------------------------------------

    @property
    def libraries(self) -> dict[str, Library]:
        """The loaded libraries, by name."""
        return self.registry.libraries

    @property
    def archive(self) -> LibraryArchive | None:
        """Where libraries are kept across restarts (the server sets it)."""
        return self.registry.archive

    @archive.setter
    def archive(self, archive: LibraryArchive | None) -> None:
        self.registry.archive = archive

    def load(self, code: str, config_text: str | None = None, replace: bool = False,
             era: Era = "rg", user: str = "default", persist: bool = True) -> str:
        """Load (or, with `replace`, upgrade) a library; returns its name (`Registry.load`)."""
        return self.registry.load(code, config_text, replace, era, user, persist)

    def delete(self, name: str, persist: bool = True) -> None:
        """Remove a library: its functions go at once; work already started finishes."""
        self.registry.delete(name, persist)

    def restore(self, saved: Iterable[SavedLibrary]) -> int:
        """Load saved libraries at start-up; returns how many loaded."""
        return self.registry.restore(saved)

    def follow(self, name: str, saved: SavedLibrary | None) -> None:
        """Apply a change another jshost instance made to library `name` (None: deleted)."""
        self.registry.follow(name, saved)

    def reload(self, on_failure: Callable[[], None] = lambda: None) -> str | None:
        """DEBUG RELOAD / LOADAOF, the library part (`jshost.host.reload`): the load error of
        the library that failed (after `on_failure` ran), or None."""
        return reload_libraries(self.registry, self.triggers, on_failure)

    def pending_async_calls(self) -> dict[str, list[str]]:
        """tf `callAsync` commands still waiting, by library name, in the order issued: those
        of replaced or deleted libraries' runtimes included."""
        calls: dict[str, list[str]] = {}
        for lib in self.registry.runtimes.active():
            if lib.pending_async_calls:
                calls.setdefault(lib.name, []).extend(lib.pending_async_calls)
        return calls

    def get_library(self, name: str) -> Library:
        """The library `name`; raises `ReplyError` (`Unknown library`)."""
        return self.registry.get(name)

    def code_size_problem(self, size: int) -> str | None:
        """The error for library code of `size` bytes, if it is over `library-max-code-size`."""
        return self.registry.code_size_problem(size)

    @property
    def verbosity(self) -> int:
        """`error-verbosity`."""
        return self.limits.verbosity

    # --- calls ----------------------------------------------------------------------------------

    def call(self, era: Era, call: CallArgs, *, asynchronous: bool, blocking_allowed: bool = True,
             db: int = 0) -> Reply | asyncio.Future[Reply]:
        """`RG.FCALL` (asynchronous=False) or `RG.FCALLASYNC` (True) with parsed arguments: the
        reply, or a future of it (`Calls.call`). Raises `ReplyError`."""
        return self.calls.call(era, call, asynchronous=asynchronous,
                               blocking_allowed=blocking_allowed, db=db)

    async def fcall(self, library: str, function: str, keys: Sequence[bytes | str] = (),
                    args: Sequence[bytes | str] = (), *, era: Era = "rg", db: int = 0) -> Reply:
        """`RG.FCALL library function len(keys) *keys *args`; raises ReplyError."""
        result = self.call(era, _call_args(library, function, keys, args), asynchronous=False,
                           db=db)
        return await result if isinstance(result, asyncio.Future) else result

    async def fcall_async(self, library: str, function: str, keys: Sequence[bytes | str] = (),
                          args: Sequence[bytes | str] = (), *, era: Era = "rg",
                          db: int = 0) -> Reply:
        """`RG.FCALLASYNC …`: returns once the function's promise settles; raises ReplyError."""
        result = self.call(era, _call_args(library, function, keys, args), asynchronous=True,
                           db=db)
        return await result if isinstance(result, asyncio.Future) else result

    def session(self, db: int) -> Session:
        """The host's own session on database `db`, as JS commands use it."""
        return self.js_commands.session(db)

    def use_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run background work on `loop`, which the caller runs (`SyncHost`)."""
        self.scheduler.use_loop(loop)

    # --- life -------------------------------------------------------------------------------------

    async def start_triggers(self) -> None:
        """Start what triggers need beyond the store's own events: on a remote store, keyspace
        notifications and the trigger lease (raises `BackendError` if Redis refuses). The
        embedded store needs nothing. Also started on its own once a trigger is registered."""
        if self.triggers.remote is not None:
            await self.triggers.remote.start()

    def close(self) -> None:
        """Free every library's runtime."""
        self.triggers.close()
        self.registry.close()


def _call_args(library: str, function: str, keys: Sequence[bytes | str],
               args: Sequence[bytes | str]) -> CallArgs:
    words = [w.encode() if isinstance(w, str) else w for w in (*keys, *args)]
    return CallArgs(library, function, len(keys), words)
