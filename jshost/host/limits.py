"""The limits the settings put on running JS: time (deadlines), memory, and reply size.

Settings may change at any time (`CONFIG SET`), so `current()` is asked on every call: it works
the limits out again only when a setting has changed (`Settings.version`), and then applies the
new ones to what already exists (every runtime's value limit, the engine's memory budget).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from jshost.engine import JSEngine, LibraryRuntime
from jshost.errors import Era, LimitErrors
from jshost.host.heap import HeapLimits
from jshost.settings import Settings

if TYPE_CHECKING:
    from jshost.host.library import Library

log = logging.getLogger("jshost")

#: Under the `kill` policy, a background slice still stops at this many times the lock's limit:
#: it runs on the event loop, where running forever would stop every client.
KILL_POLICY_CEILING = 20


class Limits:
    """What the settings allow JS (see the module docstring)."""

    def __init__(self, settings: Settings, engine: JSEngine,
                 libraries: Mapping[str, Library]) -> None:
        self.settings = settings
        self._engine = engine
        self._libraries = libraries  # the registry's: their runtimes follow the settings
        self.heap = HeapLimits(settings, libraries)
        self._current: tuple[float | None, bool] = (None, False)
        self._version = -1

    @property
    def lock_timeout(self) -> float:
        """`lock-redis-timeout`, in seconds: the longest a locked section may run."""
        return int(self.settings["lock-redis-timeout"]) / 1000

    @property
    def background_timeout(self) -> float:
        """The limit of one background slice. RedisGears ran background code on its own thread
        with no limit; jshost runs it on the event loop, so it gets the lock's limit too (under
        the `kill` policy: a hard ceiling, `KILL_POLICY_CEILING` times the lock's limit)."""
        if self.kill_policy:
            return self.lock_timeout * KILL_POLICY_CEILING
        return self.lock_timeout

    def memory_limit(self, era: Era) -> int:
        """A new library's heap limit: `library-maxmemory` (rg), or what the other tf libraries
        leave of `v8-maxmemory` (tf; `HeapLimits`)."""
        return self.heap.new_limit(era)

    @property
    def kill_policy(self) -> bool:
        """`library-fatal-failure-policy kill`: locked code that runs too long is only logged."""
        return self.settings["library-fatal-failure-policy"] == "kill"

    @property
    def lock_deadline(self) -> float | None:
        """The deadline of a locked section: `lock-redis-timeout` (`abort`), or none (`kill`,
        where RedisGears logs and lets it run)."""
        return None if self.kill_policy else self.lock_timeout

    def load_deadline(self, era: Era, with_data: bool) -> float | None:
        """The deadline of a library's top-level code: `lock_deadline`, except that a tf
        library loaded with the data (start-up, DEBUG RELOAD / LOADAOF) gets
        `db-loading-lock-redis-timeout` instead (RedisGears' rg used the lock's)."""
        if self.kill_policy or not with_data or era != "tf":
            return self.lock_deadline
        return int(self.settings["db-loading-lock-redis-timeout"]) / 1000

    @property
    def verbosity(self) -> int:
        """`error-verbosity`: 2 adds the JS stack to error texts."""
        return int(self.settings["error-verbosity"])

    def current(self) -> tuple[float | None, bool]:
        """(`lock_deadline`, `kill_policy`), worked out again only when a setting has changed
        (the runtimes' value limits and the memory budget follow the settings then)."""
        settings = self.settings
        if self._version != settings.version:
            self._current = (self.lock_deadline, self.kill_policy)
            self._version = settings.version
            self._engine.budget.limit = int(settings["js-maxmemory"])
            for lib in self._libraries.values():
                self.apply_value_limit(lib.runtime)
        return self._current

    def section_limit(self) -> float | None:
        """How long an atomic section may last (the store's waits inside one end with it)."""
        return self.current()[0]

    def apply_value_limit(self, runtime: LibraryRuntime) -> None:
        """`max-reply-size` on a runtime, with the text of its error."""
        limit = int(self.settings["max-reply-size"])
        text = LimitErrors.VALUE_TOO_LARGE.format(limit=limit, cost=self._engine.element_cost)
        runtime.set_value_limit(limit, text)

    def check_overrun(self, lib: Library, started: float) -> None:
        """Under `kill`, log a locked section that ran past `lock-redis-timeout`."""
        if self.kill_policy:
            elapsed = time.monotonic() - started
            if elapsed > self.lock_timeout:
                self.log_overrun(lib, elapsed)

    def log_overrun(self, lib: Library, elapsed: float) -> None:
        """Log a locked section that ran `elapsed` seconds, past `lock-redis-timeout`."""
        log.warning("library %s: locked code ran %.0f ms, over lock-redis-timeout "
                    "(%.0f ms); policy kill: not stopped", lib.name, elapsed * 1000,
                    self.lock_timeout * 1000)
