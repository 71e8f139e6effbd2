"""Background work: the event loop the host runs on, background slices, and idle libraries.

Coroutines, `run_on_background` work and promise settlement run as later loop callbacks ("the
background"), each library's jobs in order (`JobQueue`, jshost/host/jobs.py). Each runs as one
*slice* (`run_background`): under its own deadline, with the jobs it queues. A `block()` inside
a slice stops the slice's clock while it holds the atomic section (`enter_block` / `exit_block`).
A library deleted or replaced is *retired*: its runtime is closed once nothing it started is
still pending (`close_if_idle`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from jshost import errors
from jshost.engine import JSError, JSFunction, JSTerminated, JSThrow, JSValueTooLarge
from jshost.errors import LimitErrors
from jshost.host.atomic import AtomicSection
from jshost.host.jobs import JobQueue
from jshost.host.library import Library
from jshost.host.limits import Limits
from jshost.host.log_text import escape_controls
from jshost.settings import Settings

log = logging.getLogger("jshost")

#: What one queued background job is charged against its library's memory limit (and
#: `js-maxmemory`) until it runs: about what it holds in Python meanwhile.
JOB_COST = 1024


class Scheduler:
    """The loop and the background work of one host (see the module docstring)."""

    def __init__(self, section: AtomicSection, limits: Limits, settings: Settings) -> None:
        self.section = section
        self.limits = limits
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self.deferred: list[Callable[[], Any]] = []  # jobs queued before any loop ran
        # The end of the background slice running now (time.monotonic()), and what was left
        # of it when a block() began; see run_background, enter_block, exit_block.
        self._slice_end: float | None = None
        self._slice_left = 0.0
        self.jobs = JobQueue(self.call_soon)

    # --- the loop -----------------------------------------------------------------------------

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (raises RuntimeError when none runs)."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.get_running_loop()
            deferred, self.deferred = self.deferred, []
            for callback in deferred:
                self._loop.call_soon(callback)
        return self._loop

    def use_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run on `loop`, which its owner runs when it wants work done (`SyncHost`)."""
        self._loop = loop

    def flush_deferred(self) -> None:
        """Queue what was deferred, once a loop runs (callers look at `deferred` first: it is
        asked before each call)."""
        try:
            self.loop()
        except RuntimeError:
            pass

    def call_soon(self, callback: Callable[[], Any]) -> None:
        """Run `callback` as a later loop callback. A library loaded before any loop runs (a
        top-level `resolve()`, say) has its jobs kept until the host is first used on one."""
        try:
            loop = self.loop()
        except RuntimeError:  # no running event loop
            self.deferred.append(callback)
        else:
            loop.call_soon(callback)

    # --- libraries ----------------------------------------------------------------------------

    @staticmethod
    def close_if_idle(lib: Library) -> None:
        """Close a retired library's runtime once nothing it started is pending."""
        if lib.retired and lib.pending_jobs == 0 and lib.inflight == 0:
            lib.close()

    def close_soon_if_idle(self, lib: Library) -> None:
        """`close_if_idle`, as a later loop callback (from inside a JS job of `lib`)."""
        self.call_soon(lambda: self.close_if_idle(lib))

    # --- jobs JS queues -----------------------------------------------------------------------

    def schedule(self, lib: Library, job: JSFunction, on_terminated: JSFunction | None) -> None:
        """Queue a JS job in the background queue (`run_on_background`, a `Promise` settling)."""
        self.admit_job(lib)

        def run() -> None:
            self.job_started(lib)
            if not lib.runtime.closed:
                problem = self.run_background(lib, job)
                if problem is not None and on_terminated is not None:
                    self.run_background(lib, lambda: on_terminated(problem))
            self.close_if_idle(lib)

        self.jobs.add(lib, run)

    def admit_job(self, lib: Library) -> None:
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

    def job_started(self, lib: Library) -> None:
        """A job counted by `admit_job` leaves the queue."""
        lib.pending_jobs -= 1
        lib.runtime.release(JOB_COST)
        if lib.pending_jobs == 0:
            lib.jobs_refused = 0

    def job_arrived(self, lib: Library) -> None:
        """Count a job whose input is here already (a `callAsync` reply): over the limits if
        need be, it must run."""
        lib.pending_jobs += 1
        if not lib.runtime.closed:
            lib.runtime.charge(JOB_COST, force=True)

    # --- slices -------------------------------------------------------------------------------

    def run_background(self, lib: Library, fn: Callable[[], Any]) -> str | None:
        """Run one background slice (and the jobs it queues) under the slice deadline.
        Returns the termination text if the slice was stopped."""
        rt = lib.runtime
        limits = self.limits
        limits.current()  # (settings changed since the last call: the limits follow)
        timeout = limits.background_timeout
        self._slice_end = time.monotonic() + timeout
        limits.heap.before_entry(lib)
        rt.set_deadline(timeout)
        try:
            fn()
            log_job_errors(lib, rt.run_jobs())
        except JSTerminated:
            lib.terminations += 1
            limits.heap.stopped(lib)
            self.section.exit()  # a block() cut short leaves no atomic section behind
            log.warning("library %s: background work stopped after %.0f ms", lib.name,
                        timeout * 1000)
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
            limits.heap.after_entry(lib)
        return None

    def enter_block(self, lib: Library, flags: int, db: int) -> int:
        """`block()`: open the atomic section for a new sync client, under the lock's deadline.
        The background slice's own clock stops meanwhile."""
        token = self.section.enter(flags, db, allow_block=True)
        if self._slice_end is not None:
            self._slice_left = self._slice_end - time.monotonic()
        lib.runtime.set_deadline(self.limits.lock_deadline)
        return token

    def exit_block(self, lib: Library, token: int) -> None:
        """Leave `block()`: the slice goes on with the time it had left, not a fresh limit
        (a slice looping over `block` calls must still end)."""
        if self.section.is_live(token):
            self.section.exit()
            left = self.limits.background_timeout
            if self._slice_end is not None:
                left = max(self._slice_left, 0.0)
                self._slice_end = time.monotonic() + left
            lib.runtime.set_deadline(left)


def log_job_errors(lib: Library, job_errors: list[Any]) -> None:
    """Jobs that failed inside a call or slice are only logged (nobody waits for them)."""
    for exc in job_errors:
        log.warning("library %s: a job failed: %s", lib.name,
                    escape_controls(str(getattr(exc, "text", exc))))
