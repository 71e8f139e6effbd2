"""The JS heap limits of each era (docs/architecture.md, "JS heap limits").

* **rg**: each library's runtime may hold `library-maxmemory`; reaching it stops the JS running
  (the call or load fails with the termination text) and the next call runs normally.
* **tf**: all tf libraries share `v8-maxmemory`. Each is charged its heap, at least
  `CHARGE_FLOOR` (QuickJS reports far less than V8 reserved), and before each entry its limit is
  set to what the others leave it. A runtime stopped at its limit puts the engine in the **OOM
  state**: while it holds and the charges still add up to `v8-maxmemory`, function calls,
  keyspace triggers and stream entries get `JS engine reached OOM state ...`; once they fall
  under it by more than `FULL_SLACK` (a library deleted, its garbage collected) the state
  clears. A load is refused while less than `CHARGE_FLOOR` of `v8-maxmemory` is left, in the
  OOM state or not.

Either way a refused allocation stops JS uncatchably (the runtimes are made with
`stop_on_oom`): the reply is the termination text, never a catchable `out of memory`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from jshost import errors
from jshost.errors import Era
from jshost.settings import Settings

if TYPE_CHECKING:
    from jshost.host.library import Library

log = logging.getLogger("jshost")

#: What each tf library counts for at least against `v8-maxmemory`.
CHARGE_FLOOR: Final = 1024 * 1024
#: The charges count as full this close to `v8-maxmemory`: a runtime stopped at its limit holds
#: up to the allocation that was refused less than it (V8 reported the limit itself).
FULL_SLACK: Final = 256 * 1024


class HeapLimits:
    """The heap limits of both eras, and the tf OOM state (see the module docstring).

    Each tf library's charge is remembered as of the end of its last entry into JS
    (`after_entry`), and their total kept, so that setting a limit before an entry costs the
    same with one library as with a hundred; the refusals count afresh."""

    def __init__(self, settings: Settings, libraries: Mapping[str, Library]) -> None:
        self.settings = settings
        self._libraries = libraries  # the registry's
        self.oom = False  # tf: the engine's OOM state
        self._charges: dict[Library, int] = {}  # the current tf libraries' charges, last seen
        self._total = 0
        self._limits: dict[Library, int] = {}  # the limit each was last given
        self.v8_maxmemory = int(settings["v8-maxmemory"])  # (start-up only: it does not change)

    @staticmethod
    def charged(lib: Library) -> int:
        """What a tf library counts for against `v8-maxmemory` now."""
        return max(lib.runtime.heap_size, CHARGE_FLOOR)

    def tf_charged(self) -> int:
        """The charges of every tf library together, counted now."""
        for lib in list(self._charges):
            self.after_entry(lib)
        return self._total

    def new_limit(self, era: Era) -> int:
        """The heap limit of a new runtime: `library-maxmemory` (rg), or what the tf libraries
        leave of `v8-maxmemory` (tf)."""
        if era == "rg":
            return int(self.settings["library-maxmemory"])
        return max(1, self.v8_maxmemory - self.tf_charged())

    def before_entry(self, lib: Library) -> None:
        """A tf library's limit: `v8-maxmemory` less what the other tf libraries held when
        they last ran."""
        charge = self._charges.get(lib)
        if charge is not None:
            limit = max(1, self.v8_maxmemory - self._total + charge)  # (others' total)
            if limit != self._limits.get(lib) and not lib.runtime.closed:
                self._limits[lib] = limit
                lib.runtime.set_memory_limit(limit)

    def after_entry(self, lib: Library) -> None:
        """Remember a current tf library's charge after it ran."""
        old = self._charges.get(lib)
        if old is not None:
            new = max(lib.runtime.heap_size, CHARGE_FLOOR)
            if new != old:
                self._charges[lib] = new
                self._total += new - old

    # the registry's observer: charges come and go with the libraries

    def library_loaded(self, lib: Library, old: Library | None) -> None:
        if old is not None:
            self.library_removed(old)
        if lib.era == "tf":
            self._charges[lib] = charge = self.charged(lib)
            self._total += charge

    def library_removed(self, lib: Library) -> None:
        self._limits.pop(lib, None)
        if lib in self._charges:
            self._total -= self._charges.pop(lib)

    def entry_refusal(self, lib: Library) -> str | None:
        """The OOM-state text if a tf library may not run now; clears the state once the
        charges are under `v8-maxmemory` again."""
        if not self.oom or lib.era != "tf":
            return None
        if self.tf_charged() + FULL_SLACK >= self.v8_maxmemory:
            return errors.JS_ENGINE_OOM
        self.oom = False
        log.info("the JS engine left the OOM state")
        return None

    def load_refusal(self, era: Era) -> str | None:
        """The text a tf LOAD gets while the tf libraries hold all of `v8-maxmemory`: less
        than the `CHARGE_FLOOR` the new library would be charged is left."""
        if era == "tf" and self.tf_charged() + CHARGE_FLOOR > self.v8_maxmemory:
            return errors.compile_failed("tf", errors.JS_ENGINE_OOM)
        return None

    def stopped(self, lib: Library) -> None:
        """A library's JS was stopped: if by its memory limit, a tf one enters the OOM state."""
        if lib.era == "tf" and not lib.runtime.closed and lib.runtime.out_of_memory \
                and not self.oom:
            self.oom = True
            log.warning("library %s reached its memory limit: the JS engine is in the OOM "
                        "state (v8-maxmemory %d bytes)", lib.name, self.v8_maxmemory)
