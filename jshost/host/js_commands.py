"""The commands JS sends to the store (`client.call`, tf `callAsync`), checked as scripts are.

JS commands run in the host's own sessions, one per database (`session(db)`), never in a client's
(they never join a client's MULTI). Like RM_Call's client, such a session is put back on its
database before each command, so a SELECT from JS changes nothing for the commands after it.
Writes made through these sessions fire no keyspace trigger: each session is added to `muted`,
which the triggers consult.

Each command is checked as Redis checks a script's (`CommandTable.check_script_call`: no
`noscript` commands, no writes under `no-writes`).
"""

from __future__ import annotations

from collections.abc import MutableSet
from typing import Any

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
        problem = self.commands.check_script_call(args, bool(self.section.flags & NO_WRITES))
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
        problem = self.commands.check_script_call(args, bool(self.section.flags & NO_WRITES))
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
        text = " ".join(a.decode("utf-8", "replace") for a in args)
        lib.pending_async_calls.append(text)
        lib.inflight += 1
        # A connection waits on one command at a time: each waiting command gets its own.
        session = self.store.open_session()
        self.muted.add(session)

        async def wait() -> None:
            try:
                if db:
                    session.call([b"SELECT", str(db).encode()])
                reply = await session.execute(args)
            finally:
                session.close()
                lib.pending_async_calls.remove(text)
                lib.inflight -= 1
            scheduler.job_arrived(lib)  # over the limits if need be: the reply is here already
            self._settle_later(lib, reply, raw, resolve, reject)

        scheduler.loop().create_task(wait())

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
