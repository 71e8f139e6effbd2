"""The registry of loaded libraries: loading (compile, prelude, top level), upgrading, deleting.

A load compiles the code in a fresh runtime, installs the prelude (the sandbox and `redis`), and
runs the top level in the atomic section, where the library registers its functions and
triggers. A failed load, or a failed upgrade, changes nothing: the old library keeps serving. A
library deleted or replaced is retired: its functions go at once, work it already started
finishes, and its runtime is closed once idle. With an archive (`jshost.host.archive`), every
change is saved so that libraries outlive the process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from jshost import errors
from jshost.engine import JSEngine, JSError, JSTerminated, Script
from jshost.errors import Era, LimitErrors, ReplyError
from jshost.host.archive import LibraryArchive, SavedLibrary
from jshost.host.atomic import AtomicSection
from jshost.host.conversions import error_text
from jshost.host.library import Library
from jshost.host.limits import Limits
from jshost.host.prologue import check_api_version, parse_prologue
from jshost.host.runtimes import RuntimeList
from jshost.host.scheduler import Scheduler
from jshost.settings import Settings

log = logging.getLogger("jshost")

#: The natives of one library (`jshost.host.natives.Natives.as_dict`).
NativesFor = Callable[[Library], Mapping[str, Callable[..., Any]]]


class LibraryObserver(Protocol):
    """Hears of libraries coming and going (the triggers)."""

    def library_loaded(self, lib: Library, old: Library | None) -> None: ...

    def library_removed(self, lib: Library) -> None: ...


class Registry:
    """The libraries of one host, by name (see the module docstring)."""

    def __init__(self, libraries: dict[str, Library], settings: Settings, engine: JSEngine,
                 section: AtomicSection, scheduler: Scheduler, limits: Limits,
                 natives_for: NativesFor, texts_for: Callable[[Era], Mapping[str, Any]]) -> None:
        self.libraries = libraries  # (`Limits` keeps their runtimes' limits up to date)
        self.settings = settings
        self.engine = engine
        self.section = section
        self.scheduler = scheduler
        self.limits = limits
        self._natives_for = natives_for
        self._texts_for = texts_for
        self.observers: list[LibraryObserver] = []
        self.archive: LibraryArchive | None = None  # where libraries are kept (the server sets it)
        # True while libraries are loaded with the data (start-up, DEBUG RELOAD): tf top levels
        # then run under db-loading-lock-redis-timeout.
        self.loading_data = False
        self.runtimes = RuntimeList()  # every runtime past compilation (the debug commands)
        #: tf `DEBUG js avoid_global_allow_list`: libraries loaded from now on keep the
        #: engine's `eval`, `EvalError`, ... (never host-only objects).
        self.keep_engine_globals = False

    def load(self, code: str, config_text: str | None = None, replace: bool = False,
             era: Era = "rg", user: str = "default", persist: bool = True) -> str:
        """Load (or, with `replace`, upgrade) a library; returns its name. A failed upgrade
        changes nothing: the old library keeps serving. With an archive (and `persist`), the
        library is saved so that it outlives this process."""
        self._check_code_size(code)
        prologue = parse_prologue(code, era)
        limits = self.limits
        limits.current()
        refused = limits.heap.load_refusal(era)  # (after prologue errors, before compiling)
        if refused is not None:
            raise ReplyError(refused)
        runtime = self.engine.new_runtime(limits.memory_limit(era))
        lib = Library(prologue, code, era, config_text, user, runtime)
        limits.apply_value_limit(runtime)
        try:
            try:
                # The top level's completion value is not wanted: end the code on `undefined`
                # so that it is not converted (a cyclic or huge last value would be).
                script = runtime.compile(code + "\n;void 0", f"{prologue.name}.js")
            except JSError as exc:
                raise ReplyError(errors.compile_failed(era, exc.text)) from None
            self.runtimes.add(lib)
            check_api_version(prologue, era)
            try:  # the sandbox and `redis` (CONFIG parsed into `redis.config`), after the syntax
                lib.install(self._natives_for(lib), self._texts_for(era), self.engine.version,
                            self.keep_engine_globals)
            except JSError as exc:
                raise ReplyError(errors.compile_failed(era, exc.text)) from None
            old = self.libraries.get(prologue.name)
            if old is not None and not replace:
                raise ReplyError(errors.library_already_exists(prologue.name))
            lib.previous = old
            self._run_top_level(lib, script)
            if not lib.has_registrations():
                raise ReplyError(errors.nothing_registered(era))
        except BaseException:
            lib.close()
            raise
        lib.previous = None
        if old is not None:
            self._retire(old)
        self.libraries[lib.name] = lib
        for observer in self.observers:
            observer.library_loaded(lib, old)
        log.info("loaded library %s (%s API, %d functions)", lib.name, era, len(lib.functions))
        if persist and self.archive is not None:
            self.archive.save(SavedLibrary(lib.name, era, code, config_text, user))
        return lib.name

    def _check_code_size(self, code: str) -> None:
        """`library-max-code-size`: refuse big code before parsing or compiling any of it (a
        compile cannot be interrupted, and would hold up every client)."""
        if len(code) <= int(self.settings["library-max-code-size"]) // 4:  # all 4-byte chars fit
            return
        size = len(code) if code.isascii() else len(code.encode("utf-8", "surrogatepass"))
        problem = self.code_size_problem(size)
        if problem is not None:
            raise ReplyError(problem)

    def code_size_problem(self, size: int) -> str | None:
        """The error for library code of `size` bytes, if it is over `library-max-code-size`
        (the server asks this as soon as a LOAD's bulk header arrives)."""
        limit = int(self.settings["library-max-code-size"])
        if size > limit:
            return LimitErrors.CODE_TOO_LARGE.format(size=size, limit=limit)
        return None

    def _run_top_level(self, lib: Library, script: Script) -> None:
        rt = lib.runtime
        lib.loading = True
        self.section.enter(0, 0, allow_block=False)
        rt.set_deadline(self.limits.load_deadline(lib.era, self.loading_data))
        try:
            script.run()
            rt.run_jobs()
        except JSTerminated:
            lib.terminations += 1
            self.limits.heap.stopped(lib)
            raise ReplyError(errors.failed_loading_library(errors.EXECUTION_TERMINATED)) from None
        except JSError as exc:
            text = error_text(exc, self.limits.verbosity)
            raise ReplyError(errors.failed_loading_library(text)) from None
        finally:
            rt.set_deadline(None)
            self.section.exit()
            lib.loading = False

    def restore(self, saved: Iterable[SavedLibrary]) -> int:
        """Load saved libraries at start-up; one that fails is logged and skipped. Returns how
        many loaded."""
        loaded = 0
        self.loading_data = True
        try:
            for lib in saved:
                try:
                    self.load(lib.code, lib.config_text, True, lib.era, lib.user, persist=False)
                    loaded += 1
                except ReplyError as exc:
                    log.error("could not load saved library %s: %s", lib.name, exc.text)
        finally:
            self.loading_data = False
        return loaded

    def follow(self, name: str, saved: SavedLibrary | None) -> None:
        """Apply a change another jshost instance made to library `name` (None: deleted)."""
        current = self.libraries.get(name)
        if saved is None:
            if current is not None:
                self.delete(name, persist=False)
            return
        if current is not None and (current.code, current.config_text, current.era) == (
                saved.code, saved.config_text, saved.era):
            return  # our own change coming back, or nothing new
        try:
            self.load(saved.code, saved.config_text, True, saved.era, saved.user, persist=False)
        except ReplyError as exc:
            log.error("library %s changed elsewhere but does not load here: %s", name, exc.text)

    def delete(self, name: str, persist: bool = True) -> None:
        """Remove a library: its functions go at once; work already started finishes."""
        lib = self.libraries.pop(name, None)
        if lib is None:
            raise ReplyError(errors.LIBRARY_DOES_NOT_EXIST)
        self._retire(lib)
        for observer in self.observers:
            observer.library_removed(lib)
        log.info("deleted library %s", name)
        if persist and self.archive is not None:
            self.archive.remove(name)

    def _retire(self, lib: Library) -> None:
        lib.deleted = lib.retired = True
        self.scheduler.close_if_idle(lib)

    def get(self, name: str) -> Library:
        """The library `name`, or the client's `Unknown library` error."""
        lib = self.libraries.get(name)
        if lib is None:
            raise ReplyError(errors.unknown_library(name))
        return lib

    def close(self) -> None:
        """Free every library's runtime."""
        for lib in list(self.libraries.values()):
            lib.close()
        self.libraries.clear()
