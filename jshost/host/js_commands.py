"""The commands JS sends to the store (`client.call`, tf `callAsync`), checked as scripts are.

JS commands run in the host's own sessions, one per database (`session(db)`), never in a client's
(they never join a client's MULTI). Like RM_Call's client, such a session is put back on its
database before each command, so a SELECT from JS changes nothing for the commands after it.
Writes made through these sessions fire no keyspace trigger: each session is added to `muted`,
which the triggers consult.

Each command is checked as Redis checks a script's (`CommandTable.check_script_call`: no
`noscript` commands, no writes under `no-writes`). `DEBUG allow_unsafe_redis_commands` turns
script mode off for good (`script_mode`): `noscript` commands pass then, but for jshost's own,
and each command must also pass the server's refusals for clients (`guard`, set by the server:
what a backend must not be sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableSet
from typing import Any

from jshost import errors
from jshost.engine import JSFunction, JSThrow
from jshost.host.atomic import AtomicSection
from jshost.host.conversions import reply_to_js
from jshost.host.library import NO_WRITES, Library
from jshost.host.scheduler import Scheduler
from jshost.replies import ErrorReply, StoreReply
from jshost.store import Session, Store


class JSCommands:
    """Runs the store commands of JS clients (see the module docstring)."""

    def __init__(self, store: Store, section: AtomicSection, scheduler: Scheduler,
                 muted: MutableSet[Any]) -> None:
        self.store = store
        self.commands = store.command_info()
        self.section = section
        self.scheduler = scheduler
        self.muted = muted
        self._sessions: dict[int, Session] = {}
        self._waiting: dict[_Waiting, asyncio.Task[None]] = {}  # tf callAsync still blocked
        self.script_mode = True
        #: The server's refusals of client commands (None: none), asked out of script mode.
        self.guard: Callable[[list[bytes]], str | None] | None = None

    def check(self, args: list[bytes], no_writes: bool) -> str | None:
        """Why `args` may not run from JS (None: it may)."""
        problem = self.commands.check_script_call(args, no_writes, self.script_mode)
        if problem is None and not self.script_mode and self.guard is not None:
            problem = self.guard(args)
        return problem

    def session(self, db: int) -> Session:
        """The host's own session on database `db`."""
        session = self._sessions.get(db)
        if session is None or session.closed:  # (another client may CLIENT KILL it)
            session = self._sessions[db] = self.store.open_session()
            self.muted.add(session)  # JS writes fire no keyspace trigger
        if session.db != db:
            session.call([b"SELECT", str(db).encode()])
        return session

    def run(self, args: list[bytes]) -> StoreReply:
        """A command from `client.call`, now, in the atomic section."""
        problem = self.check(args, bool(self.section.flags & NO_WRITES))
        if problem is not None:
            raise JSThrow(problem)
        return self.session(self.section.db).call(args)

    def run_async(self, lib: Library, args: list[bytes], raw: bool, resolve: JSFunction,
                  reject: JSFunction) -> None:
        """tf `callAsync`: the promise is settled by a background job, never synchronously;
        a blocking command waits for the store without holding anything. A refused command is a
        Redis error reply like any other: it rejects the promise."""
        scheduler = self.scheduler
        scheduler.admit_job(lib)  # the job that settles the promise, counted now
        problem = self.check(args, bool(self.section.flags & NO_WRITES))
        if problem is not None:
            self._settle_later(lib, ErrorReply(problem), raw, resolve, reject)
            return
        db = self.section.db
        # Run now, inside the atomic section: a blocking command answers at once when it can
        # (as in MULTI), and its "nothing available" null means it would block.
        reply = self.session(db).call(args)
        if reply is not None or not self.commands.is_blocking(args):
            self._settle_later(lib, reply, raw, resolve, reject)
            return
        # It waits: its job is counted once the reply is in (a waiting call is `inflight`).
        scheduler.job_started(lib)
        waiting = _Waiting(lib, " ".join(a.decode("utf-8", "replace") for a in args))
        # A connection waits on one command at a time: each waiting command gets its own.
        session = self.store.open_session()
        self.muted.add(session)

        async def wait() -> None:
            try:
                if db:
                    session.call([b"SELECT", str(db).encode()])
                reply = await session.execute(args)
            except asyncio.CancelledError:  # `abort_waiting`
                reply = ErrorReply(errors.COMMAND_WAS_ABORTED)
            finally:
                session.close()
                waiting.finish()
                self._waiting.pop(waiting, None)
            scheduler.job_arrived(lib)  # over the limits if need be: the reply is here already
            self._settle_later(lib, reply, raw, resolve, reject)

        self._waiting[waiting] = scheduler.loop().create_task(wait())

    def abort_waiting(self) -> None:
        """The server becomes a replica: every waiting `callAsync` is aborted (its promise is
        rejected with `Command was aborted`, in a job); the pending lists empty at once."""
        for waiting, task in list(self._waiting.items()):
            waiting.finish()
            task.cancel()

    def _settle_later(self, lib: Library, reply: StoreReply, raw: bool, resolve: JSFunction,
                      reject: JSFunction) -> None:
        """Settle a `callAsync` promise in a job (counted by `run_async`)."""
        scheduler = self.scheduler

        def run() -> None:
            scheduler.job_started(lib)
            if lib.runtime.closed:
                return
            try:
                value = reply_to_js(reply, raw)
            except JSThrow as exc:
                error = exc.args[0]
                scheduler.run_background(lib, lambda: reject(error))
            else:
                scheduler.run_background(lib, lambda: resolve(value))
            scheduler.close_if_idle(lib)

        scheduler.jobs.add(lib, run)


class _Waiting:
    """One `callAsync` still blocked: listed in its library's `pending_async_calls` (and
    counted `inflight`) until `finish`."""

    __slots__ = ("lib", "text", "done")

    def __init__(self, lib: Library, text: str) -> None:
        self.lib, self.text, self.done = lib, text, False
        lib.pending_async_calls.append(text)
        lib.inflight += 1

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.lib.pending_async_calls.remove(self.text)
            self.lib.inflight -= 1
