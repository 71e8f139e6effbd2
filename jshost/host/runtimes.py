"""Every library runtime the host has created, as RedisGears' debug commands count them.

RedisGears kept one list of weak references to every V8 isolate it created; `<cmd> DEBUG js
isolates_stats` counts the entries still alive (`active`) and those already freed
(`not_active`), and clients compare exact numbers. jshost keeps the same list of its runtimes:

* a runtime is added once a load gets past compilation (a prologue or syntax error adds
  nothing; a failure after that, such as an exception in the top level or nothing registered,
  was added and is not-active as soon as the failed load has closed it);
* it is active while it is open: it belongs to a registered library, or work it started is
  still pending (the registry and the scheduler close a retired runtime once idle);
* `gc()` drops the not-active entries, and so does `add` once there are more than 100.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Final

from jshost.host.library import Library

#: Past this many entries, adding one prunes the not-active ones (as the original did).
PRUNE_ABOVE: Final = 100


class RuntimeList:
    """The runtimes of one host in creation order (see the module docstring)."""

    def __init__(self) -> None:
        self._entries: list[weakref.ref[Library]] = []

    def add(self, lib: Library) -> None:
        """Track the runtime of `lib`, which has just been compiled."""
        self._entries.append(weakref.ref(lib))
        if len(self._entries) > PRUNE_ABOVE:
            self.gc()

    def gc(self) -> None:
        """Forget the not-active runtimes."""
        self._entries = [ref for ref in self._entries if _active(ref())]

    def counts(self) -> tuple[int, int]:
        """(active, not_active)."""
        active = sum(1 for ref in self._entries if _active(ref()))
        return active, len(self._entries) - active

    def active(self) -> Iterator[Library]:
        """The libraries whose runtimes are active, in creation order."""
        for ref in self._entries:
            lib = ref()
            if lib is not None and _active(lib):
                yield lib

    def holders(self, registered: dict[str, Library]) -> list[int]:
        """Per tracked runtime, how many holders keep it alive (0: not active): its place in
        the registry, and each piece of work it still has pending."""
        counts = []
        for ref in self._entries:
            lib = ref()
            if lib is None or not _active(lib):
                counts.append(0)
                continue
            held = (registered.get(lib.name) is lib) + lib.pending_jobs + lib.inflight
            counts.append(max(held, 1))
        return counts


def _active(lib: Library | None) -> bool:
    return lib is not None and not lib.runtime.closed
