"""The library host: the registry of libraries and every rule of running their functions.

`Host` knows nothing of sockets: the server, the CLI and the pytest plugin drive the same object.
JS runs on the asyncio event-loop thread. A sync function, a `block()` section or a library's
top level runs *locked*: synchronously, start to end, so no other command reaches the store
meanwhile. Background work (coroutines, `run_on_background`, promise settlement) runs in later
loop callbacks, each slice bounded by its own deadline.

The core call path (`call`) is synchronous and returns either a reply or, for a result still
pending, an `asyncio.Future` of the reply; `fcall` / `fcall_async` wrap it for awaiting callers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from jshost import errors
from jshost._engine import ELEMENT_COST, QUICKJS_VERSION
from jshost.commands.grammar import CallArgs, check_enough_arguments
from jshost.conversions import (
    ConversionError,
    error_text,
    is_too_deep,
    js_to_reply,
    reply_to_js,
    settled_result,
    value_error_text,
)
from jshost.engine import (
    JSError,
    JSFunction,
    JSPromise,
    JSTerminated,
    JSThrow,
    JSValueTooLarge,
    MemoryPool,
)
from jshost.errors import Era, LimitErrors, ReplyError
from jshost.jobs import JobQueue
from jshost.library import ALLOW_OOM, NO_WRITES, RAW_ARGUMENTS, FunctionInfo, Library
from jshost.lock import Lock, async_token
from jshost.natives import Natives, escape_controls, prelude_texts
from jshost.persistence import LibraryArchive, SavedLibrary
from jshost.prologue import check_api_version, parse_prologue
from jshost.replies import ErrorReply, Reply
from jshost.settings import Settings
from jshost.store import EmbeddedStore, Session, Store
from jshost.triggers import Triggers

log = logging.getLogger("jshost")

ENGINE_VERSION = f"quickjs-ng {QUICKJS_VERSION}"
#: Under the `kill` policy, a background slice still stops at this many times the lock's limit:
#: it runs on the event loop, where running forever would stop every client.
KILL_POLICY_CEILING = 20
#: What one queued background job is charged against its library's memory limit (and
#: `js-maxmemory`) until it runs: about what it holds in Python meanwhile.
JOB_COST = 1024


class Host:
    """Loads RedisGears libraries and runs their functions against a store."""

    def __init__(self, store: Store | None = None, settings: Settings | None = None) -> None:
        self.store: Store = store if store is not None else EmbeddedStore()
        self.settings = settings if settings is not None else Settings()
        self.libraries: dict[str, Library] = {}
        self.lock = Lock(self.store.begin_atomic, self.store.end_atomic)
        self.commands = self.store.command_info()
        self._sessions: dict[int, Session] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.archive: LibraryArchive | None = None  # where libraries are kept (the server sets it)
        self._deferred: list[Callable[[], Any]] = []  # jobs queued before any loop ran
        # The end of the background slice running now (time.monotonic()), and what was left
        # of it when a block() began; see _run_background, enter_block, exit_block.
        self._slice_end: float | None = None
        self._slice_left = 0.0
        # Keyspace and stream triggers (jshost/triggers.py): the store's event listener.
        self.triggers = Triggers(self)
        self._limits: tuple[float | None, bool] = (None, False)  # see call_limits
        self._limits_version = -1
        # Every library's heap together stays under `js-maxmemory`.
        self.memory_pool = MemoryPool(int(self.settings["js-maxmemory"]))
        self.jobs = JobQueue(self.call_soon)  # the background queue (jshost/jobs.py)

    # --- settings -----------------------------------------------------------------------------

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
        """A library's heap limit: `library-maxmemory` (rg). tf libraries grew from
        `v8-library-initial-memory-limit` while all together stayed under `v8-maxmemory`;
        jshost gives each tf library `v8-maxmemory` as its limit (the most it could reach)."""
        name = "library-maxmemory" if era == "rg" else "v8-maxmemory"
        return int(self.settings[name])

    @property
    def kill_policy(self) -> bool:
        """`library-fatal-failure-policy kill`: locked code that runs too long is only logged."""
        return self.settings["library-fatal-failure-policy"] == "kill"

    @property
    def lock_deadline(self) -> float | None:
        """The deadline of a locked section: `lock-redis-timeout` (`abort`), or none (`kill`,
        where RedisGears logs and lets it run)."""
        return None if self.kill_policy else self.lock_timeout

    def call_limits(self) -> tuple[float | None, bool]:
        """(`lock_deadline`, `kill_policy`), asked on every call: worked out again only when a
        setting has changed (the runtimes' value and memory limits follow the settings then)."""
        settings = self.settings
        if self._limits_version != settings.version:
            self._limits = (self.lock_deadline, self.kill_policy)
            self._limits_version = settings.version
            self.memory_pool.limit = int(settings["js-maxmemory"])
            for lib in self.libraries.values():
                self._set_value_limit(lib)
        return self._limits

    def _set_value_limit(self, lib: Library) -> None:
        """`max-reply-size` on a library's runtime, with the text of its error."""
        limit = int(self.settings["max-reply-size"])
        text = LimitErrors.VALUE_TOO_LARGE.format(limit=limit, cost=ELEMENT_COST)
        lib.runtime.set_value_limit(limit, text)

    def check_overrun(self, lib: Library, started: float) -> None:
        """Under `kill`, log a locked section that ran past `lock-redis-timeout`."""
        if self.kill_policy:
            elapsed = time.monotonic() - started
            if elapsed > self.lock_timeout:
                log.warning("library %s: locked code ran %.0f ms, over lock-redis-timeout "
                            "(%.0f ms); policy kill: not stopped", lib.name, elapsed * 1000,
                            self.lock_timeout * 1000)

    @property
    def verbosity(self) -> int:
        return int(self.settings["error-verbosity"])

    def store_is_oom(self) -> bool:
        """Whether the store is over its maxmemory (§5.3); the embedded store never is."""
        return self.store.is_oom()

    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.get_running_loop()
            deferred, self._deferred = self._deferred, []
            for callback in deferred:
                self._loop.call_soon(callback)
        return self._loop

    def _flush_deferred(self) -> None:
        try:
            self.loop()  # queues what was deferred, once a loop runs
        except RuntimeError:
            pass

    def call_soon(self, callback: Callable[[], Any]) -> None:
        """Run `callback` as a later loop callback. A library loaded before any loop runs (a
        top-level `resolve()`, say) has its jobs kept until the host is first used on one."""
        try:
            loop = self.loop()
        except RuntimeError:  # no running event loop
            self._deferred.append(callback)
        else:
            loop.call_soon(callback)

    # --- libraries (SPEC §1, §2) --------------------------------------------------------------

    def load(self, code: str, config_text: str | None = None, replace: bool = False,
             era: Era = "rg", user: str = "default", persist: bool = True) -> str:
        """Load (or, with `replace`, upgrade) a library; returns its name. A failed upgrade
        changes nothing: the old library keeps serving. With an archive (and `persist`), the
        library is saved so that it outlives this process."""
        self._check_code_size(code)
        prologue = parse_prologue(code, era)
        self.call_limits()
        lib = Library(prologue, code, era, config_text, user,
                      memory_limit=self.memory_limit(era), pool=self.memory_pool)
        self._set_value_limit(lib)
        try:
            try:
                # The top level's completion value is not wanted: end the code on `undefined`
                # so that it is not converted (a cyclic or huge last value would be).
                script = lib.runtime.compile(code + "\n;void 0", f"{prologue.name}.js")
            except JSError as exc:
                raise ReplyError(errors.compile_failed(era, exc.text)) from None
            check_api_version(prologue, era)
            try:  # the sandbox and `redis` (CONFIG parsed into `redis.config`), after the syntax
                lib.install(Natives(self, lib).as_dict(), prelude_texts(era), ENGINE_VERSION)
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
        self.triggers.library_loaded(lib, old)
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

    def restore(self, saved: Iterable[SavedLibrary]) -> int:
        """Load saved libraries at start-up; one that fails is logged and skipped. Returns how
        many loaded."""
        loaded = 0
        for lib in saved:
            try:
                self.load(lib.code, lib.config_text, True, lib.era, lib.user, persist=False)
                loaded += 1
            except ReplyError as exc:
                log.error("could not load saved library %s: %s", lib.name, exc.text)
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

    def _run_top_level(self, lib: Library, script: Any) -> None:
        rt = lib.runtime
        lib.loading = True
        self.lock.enter(0, 0, allow_block=False)
        rt.set_deadline(self.lock_deadline)
        try:
            script.run()
            rt.run_jobs()
        except JSTerminated:
            lib.terminations += 1
            raise ReplyError(errors.failed_loading_library(errors.EXECUTION_TERMINATED)) from None
        except JSError as exc:
            text = error_text(exc, self.verbosity)
            raise ReplyError(errors.failed_loading_library(text)) from None
        finally:
            rt.set_deadline(None)
            self.lock.exit()
            lib.loading = False

    def delete(self, name: str, persist: bool = True) -> None:
        """Remove a library: its functions go at once; work already started finishes."""
        lib = self.libraries.pop(name, None)
        if lib is None:
            raise ReplyError(errors.LIBRARY_DOES_NOT_EXIST)
        self._retire(lib)
        self.triggers.library_removed(lib)
        log.info("deleted library %s", name)
        if persist and self.archive is not None:
            self.archive.remove(name)

    def _retire(self, lib: Library) -> None:
        lib.deleted = lib.retired = True
        self._close_if_idle(lib)

    def _close_if_idle(self, lib: Library) -> None:
        if lib.retired and lib.pending_jobs == 0 and lib.inflight == 0:
            lib.close()

    def get_library(self, name: str) -> Library:
        lib = self.libraries.get(name)
        if lib is None:
            raise ReplyError(errors.unknown_library(name))
        return lib

    # --- calls (SPEC §4) ----------------------------------------------------------------------

    def call(self, era: Era, call: CallArgs, *, asynchronous: bool, blocking_allowed: bool = True,
             db: int = 0) -> Reply | asyncio.Future[Reply]:
        """Run `RG.FCALL` (asynchronous=False) or `RG.FCALLASYNC` (True) with parsed arguments.

        Returns the reply, or a future of it when the result is a promise still pending and
        blocking is allowed. Raises `ReplyError` with the reply text on failure.
        `blocking_allowed=False` is the MULTI/EXEC case (§4.5)."""
        if self._deferred:
            self._flush_deferred()
        lib = self.get_library(call.library)
        fn = lib.functions.get(call.function)
        if fn is None:
            raise ReplyError(errors.unknown_function(call.function))
        if not fn.flags & (NO_WRITES | ALLOW_OOM) and self.store_is_oom():
            raise ReplyError(errors.OOM_CAN_NOT_RUN)
        check_enough_arguments(call)
        if fn.is_async and not asynchronous:
            raise ReplyError(errors.async_needs_async_command(era))
        args = _arguments(call.rest, fn.flags & RAW_ARGUMENTS)
        allow_block = asynchronous and blocking_allowed
        if fn.coroutine:
            if not allow_block:
                raise ReplyError(errors.CAN_NOT_BLOCK_CLIENT)
            return self._start_coroutine(lib, fn, args, db)
        return self._call_locked(lib, fn, args, db, allow_block)

    def _call_locked(self, lib: Library, fn: FunctionInfo, args: list[Any], db: int,
                     allow_block: bool) -> Reply | asyncio.Future[Reply]:
        rt = lib.runtime
        deadline, kill = self.call_limits()
        token = self.lock.enter(fn.flags, db, allow_block)
        rt.set_deadline(deadline)
        started = time.monotonic() if kill else 0.0
        try:
            value = lib.entry["invokeSync"](fn.fn, token, args)
            if rt.has_pending_jobs:
                _log_job_errors(lib, rt.run_jobs())
            if isinstance(value, JSPromise):
                return self._promise_reply(lib, value, allow_block)
            return js_to_reply(value)
        except JSTerminated:
            lib.terminations += 1
            rt.gc()
            raise ReplyError(errors.EXECUTION_TERMINATED) from None
        except JSError as exc:
            raise ReplyError(error_text(exc, self.verbosity)) from None
        except ConversionError as exc:
            raise ReplyError(exc.text) from None
        except JSValueTooLarge as exc:  # the return value costs more than max-reply-size
            raise ReplyError(str(exc)) from None
        except ValueError as exc:
            if is_too_deep(exc):  # the return value itself could not be converted
                raise ReplyError(errors.NESTING_LEVEL_REACHED) from None
            raise
        finally:
            rt.set_deadline(None)
            self.lock.exit()
            if kill:
                self.check_overrun(lib, started)

    def _promise_reply(self, lib: Library, promise: JSPromise,
                       allow_block: bool) -> Reply | asyncio.Future[Reply]:
        state = promise.state
        if state == "pending":
            if not allow_block:
                raise ReplyError(errors.CAN_NOT_BLOCK_CLIENT)
            return self._await_promise(lib, promise)
        return self._settled_reply(lib, promise, state == "fulfilled")

    def _settled_reply(self, lib: Library, promise: JSPromise, fulfilled: bool) -> Reply:
        """The reply for a settled promise: its converted value, or its reason's error text."""
        try:
            value = settled_result(promise)
            if fulfilled:
                return js_to_reply(value)
        except ConversionError as exc:
            raise ReplyError(exc.text) from None
        except JSValueTooLarge as exc:
            raise ReplyError(str(exc)) from None
        except JSError as exc:  # a getter threw while the value was converted
            raise ReplyError(error_text(exc, self.verbosity)) from None
        raise ReplyError(value_error_text(value, self.verbosity, lib.string_of))

    def _await_promise(self, lib: Library, promise: JSPromise) -> asyncio.Future[Reply]:
        """A future settled when `promise` settles (the callbacks run as JS jobs)."""
        future: asyncio.Future[Reply] = self.loop().create_future()
        lib.inflight += 1

        def settle(outcome: Callable[[], Reply]) -> None:
            lib.inflight -= 1
            self.call_soon(lambda: self._close_if_idle(lib))
            if future.done():
                return
            try:
                future.set_result(outcome())
            except ReplyError as exc:
                future.set_exception(exc)
            except JSTerminated:  # converting the value ran out of time
                lib.terminations += 1
                future.set_exception(ReplyError(errors.EXECUTION_TERMINATED))
                raise

        lib.entry["watch"](promise, lambda: settle(lambda: self._settled_reply(lib, promise, True)),
                           lambda: settle(lambda: self._settled_reply(lib, promise, False)))
        return future

    def _start_coroutine(self, lib: Library, fn: FunctionInfo, args: list[Any],
                         db: int) -> asyncio.Future[Reply]:
        """An async function under the async command: a background job whose promise gives
        the reply (§4.3)."""
        future: asyncio.Future[Reply] = self.loop().create_future()
        lib.inflight += 1
        lib.pending_jobs += 1
        token = async_token(fn.flags, db)

        def start() -> None:
            lib.pending_jobs -= 1
            lib.inflight -= 1
            if lib.runtime.closed:
                _set_error(future, errors.FUNCTION_WERE_UNREGISTERED)
                return
            outcome: list[Any] = []

            def run() -> None:
                # The call, its microtasks, and the reply if the promise has settled: all in
                # the slice, under its deadline (converting may run getters).
                try:
                    value = lib.entry["invokeAsync"](fn.fn, token, args)
                    _log_job_errors(lib, lib.runtime.run_jobs())
                    if isinstance(value, JSPromise):
                        outcome.append(self._promise_reply(lib, value, allow_block=True))
                    else:
                        outcome.append(_converted(value))
                except ReplyError as exc:
                    outcome.append(exc)
                except JSError as exc:
                    outcome.append(ReplyError(error_text(exc, self.verbosity)))
                except JSValueTooLarge as exc:
                    outcome.append(ReplyError(str(exc)))
                except ValueError as exc:
                    if not is_too_deep(exc):
                        raise
                    outcome.append(ReplyError(errors.NESTING_LEVEL_REACHED))

            problem = self._run_background(lib, run)
            if problem is not None:
                _set_error(future, problem)
            elif not outcome:
                _set_error(future, errors.PROMISE_DROPPED)
            else:
                _chain(outcome[0], future)
            self._close_if_idle(lib)

        self.jobs.add(lib, start)
        return future

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

    # --- background work ----------------------------------------------------------------------

    def schedule(self, lib: Library, job: JSFunction, on_terminated: JSFunction | None) -> None:
        """Queue a JS job in the background queue (jshost/jobs.py)."""
        self._admit_job(lib)

        def run() -> None:
            self._job_started(lib)
            if not lib.runtime.closed:
                problem = self._run_background(lib, job)
                if problem is not None and on_terminated is not None:
                    self._run_background(lib, lambda: on_terminated(problem))
            self._close_if_idle(lib)

        self.jobs.add(lib, run)

    def _admit_job(self, lib: Library) -> None:
        """Count one more job that JS queued, within `library-max-pending-jobs` (else a thrown
        error) and the library's memory (else a stop, as any allocation past it)."""
        limit = int(self.settings["library-max-pending-jobs"])
        if lib.pending_jobs >= limit:
            if not lib.jobs_refused:
                log.warning("library %s: %d background jobs pending; refusing more until they "
                            "have run (library-max-pending-jobs)", lib.name, lib.pending_jobs)
            lib.jobs_refused += 1
            raise JSThrow(LimitErrors.TOO_MANY_JOBS.format(name=lib.name, limit=limit))
        if not lib.runtime.charge(JOB_COST):
            raise JSTerminated("the library's memory cannot hold one more job")
        lib.pending_jobs += 1

    def _job_started(self, lib: Library) -> None:
        """A job counted by `_admit_job` leaves the queue."""
        lib.pending_jobs -= 1
        lib.runtime.release(JOB_COST)
        if lib.pending_jobs == 0:
            lib.jobs_refused = 0

    def _run_background(self, lib: Library, fn: Callable[[], Any]) -> str | None:
        """Run one background slice (and the jobs it queues) under the slice deadline.
        Returns the termination text if the slice was stopped."""
        rt = lib.runtime
        self.call_limits()  # (settings changed since the last call: the limits follow)
        self._slice_end = time.monotonic() + self.background_timeout
        rt.set_deadline(self.background_timeout)
        try:
            fn()
            _log_job_errors(lib, rt.run_jobs())
        except JSTerminated:
            lib.terminations += 1
            self.lock.exit()  # a block() cut short leaves no lock behind
            log.warning("library %s: background work stopped after %.0f ms", lib.name,
                        self.background_timeout * 1000)
            rt.set_deadline(None)
            rt.gc()
            return errors.EXECUTION_TERMINATED
        except JSError as exc:
            log.warning("library %s: background job failed: %s", lib.name,
                        escape_controls(exc.text))
        except JSValueTooLarge as exc:  # (what it passed to a client.call, say)
            log.warning("library %s: background job failed: %s", lib.name, exc)
        finally:
            rt.set_deadline(None)
            self._slice_end = None
        return None

    def enter_block(self, lib: Library, flags: int, db: int) -> int:
        """`block()`: take the lock for a new sync client, under the lock's deadline. The
        background slice's own clock stops meanwhile."""
        token = self.lock.enter(flags, db, allow_block=True)
        if self._slice_end is not None:
            self._slice_left = self._slice_end - time.monotonic()
        lib.runtime.set_deadline(self.lock_deadline)
        return token

    def exit_block(self, lib: Library, token: int) -> None:
        """Leave `block()`: the slice goes on with the time it had left, not a fresh limit
        (a slice looping over `block` calls must still end)."""
        if self.lock.is_live(token):
            self.lock.exit()
            left = self.background_timeout
            if self._slice_end is not None:
                left = max(self._slice_left, 0.0)
                self._slice_end = time.monotonic() + left
            lib.runtime.set_deadline(left)

    # --- commands from JS (SPEC §5) -----------------------------------------------------------

    def session(self, db: int) -> Session:
        """The host's own session on database `db` (JS commands never join a client's MULTI).
        Like RM_Call's client, it is put back on `db` before each command, so a SELECT from JS
        changes nothing for the commands after it."""
        session = self._sessions.get(db)
        if session is None or session.closed:  # (another client may CLIENT KILL it)
            session = self._sessions[db] = self.store.open_session()
            self.triggers.muted.add(session)  # JS writes fire no keyspace trigger (§7.4)
        if session.db != db:
            session.call([b"SELECT", str(db).encode()])
        return session

    def run_js_command(self, args: list[bytes]) -> Reply:
        """A command from `client.call`, checked as script mode would (§5.1, §5.2)."""
        problem = self.commands.check_script_call(args, bool(self.lock.flags & NO_WRITES))
        if problem is not None:
            raise JSThrow(problem)
        return self.session(self.lock.db).call(args)

    def run_js_command_async(self, lib: Library, args: list[bytes], raw: bool,
                             resolve: JSFunction, reject: JSFunction) -> None:
        """tf `callAsync`: the promise is settled by a background job, never synchronously;
        a blocking command waits for the store without holding anything (§4.10). A refused
        command is a Redis error reply like any other: it rejects the promise."""
        self._admit_job(lib)  # the job that settles the promise, counted now
        problem = self.commands.check_script_call(args, bool(self.lock.flags & NO_WRITES))
        if problem is not None:
            self._settle_later(lib, ErrorReply(problem), raw, resolve, reject)
            return
        db = self.lock.db
        # Run now, inside the atomic section: a blocking command answers at once when it can
        # (as in MULTI), and its "nothing available" null means it would block.
        reply = self.session(db).call(args)
        if reply is not None or not self.commands.is_blocking(args):
            self._settle_later(lib, reply, raw, resolve, reject)
            return
        # It waits: its job is counted once the reply is in (a waiting call is `inflight`).
        self._job_started(lib)
        text = " ".join(a.decode("utf-8", "replace") for a in args)
        lib.pending_async_calls.append(text)
        lib.inflight += 1
        # A connection waits on one command at a time: each waiting command gets its own.
        session = self.store.open_session()
        self.triggers.muted.add(session)

        async def wait() -> None:
            try:
                if db:
                    session.call([b"SELECT", str(db).encode()])
                reply = await session.execute(args)
            finally:
                session.close()
                lib.pending_async_calls.remove(text)
                lib.inflight -= 1
            lib.pending_jobs += 1  # over the limits if need be: the reply is here already
            if not lib.runtime.closed:
                lib.runtime.charge(JOB_COST, force=True)
            self._settle_later(lib, reply, raw, resolve, reject)

        self.loop().create_task(wait())

    def _settle_later(self, lib: Library, reply: Reply, raw: bool, resolve: JSFunction,
                      reject: JSFunction) -> None:
        """Settle a `callAsync` promise in a job (counted by `run_js_command_async`)."""

        def run() -> None:
            self._job_started(lib)
            if lib.runtime.closed:
                return
            try:
                value = reply_to_js(reply, raw)
            except JSThrow as exc:
                error = exc.args[0]
                self._run_background(lib, lambda: reject(error))
            else:
                self._run_background(lib, lambda: resolve(value))
            self._close_if_idle(lib)

        self.jobs.add(lib, run)

    # --- shutdown -----------------------------------------------------------------------------

    async def start_triggers(self) -> None:
        """Start what triggers need beyond the store's own events: on a remote store, keyspace
        notifications and the trigger lease (raises `BackendError` if Redis refuses). The
        embedded store needs nothing. Also started on its own once a trigger is registered."""
        if self.triggers.remote is not None:
            await self.triggers.remote.start()

    def close(self) -> None:
        """Free every library's runtime."""
        self.triggers.close()
        for lib in list(self.libraries.values()):
            lib.close()
        self.libraries.clear()


# --- helpers --------------------------------------------------------------------------------


def _arguments(rest: list[bytes], raw: int) -> list[Any]:
    """Function arguments (§4.2): strings, or ArrayBuffers with `raw-arguments`."""
    if raw:
        return list(rest)
    try:
        return [a.decode("utf-8") for a in rest]
    except UnicodeDecodeError:
        raise ReplyError(errors.CAN_NOT_CONVERT_ARGUMENT_TO_STRING) from None


def _call_args(library: str, function: str, keys: Sequence[bytes | str],
               args: Sequence[bytes | str]) -> CallArgs:
    words = [w.encode() if isinstance(w, str) else w for w in (*keys, *args)]
    return CallArgs(library, function, len(keys), words)


def _converted(value: Any) -> Reply:
    try:
        return js_to_reply(value)
    except ConversionError as exc:
        raise ReplyError(exc.text) from None


def _set_error(future: asyncio.Future[Reply], text: str) -> None:
    if not future.done():
        future.set_exception(ReplyError(text))


def _chain(source: Any, target: asyncio.Future[Reply]) -> None:
    """Complete `target` from a reply, a ReplyError or a future of a reply."""
    if isinstance(source, asyncio.Future):
        def copy(done: asyncio.Future[Reply]) -> None:
            if target.done():
                return
            if done.exception() is not None:
                target.set_exception(done.exception())  # type: ignore[arg-type]
            else:
                target.set_result(done.result())
        source.add_done_callback(copy)
    elif isinstance(source, ReplyError):
        if not target.done():
            target.set_exception(source)
    elif not target.done():
        target.set_result(source)


def _log_job_errors(lib: Library, job_errors: list[Any]) -> None:
    for exc in job_errors:
        log.warning("library %s: a job failed: %s", lib.name,
                    escape_controls(str(getattr(exc, "text", exc))))

