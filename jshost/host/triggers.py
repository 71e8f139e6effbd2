"""Keyspace triggers, and the routing of store events to stream triggers (as RedisGears'
keys_notifications.rs and `key_space_notification` in redisgears_core/src/lib.rs do it).

`Triggers` is the store's listener (`jshost.store.base.StoreListener`) while any library has a
trigger: the embedded store calls `on_event(session, db, event, key)` synchronously, right after
the command that caused it and before its reply (jshost/store/embedded/events.py); the remote
store does the same from keyspace notifications (jshost/store/remote/subscriber.py), where a
lease decides which jshost runs the triggers (jshost/host/lease.py).

* **Muting.** An event caused by one of the host's own sessions — those JS commands run
  through (`Host.session`), the ones tf `callAsync` waits on, and on a remote store "inside an
  atomic section" — fires no keyspace trigger. Stream triggers still see it.
* **Firing.** Every keyspace trigger whose prefix the key starts with (bytes; an empty
  prefix matches everything) fires, library by library in registration order. On a replica
  (`Gates.replica`) a tf library's triggers do not fire; an rg library's do (as in each era).
* **A run.** `data = {event, key, key_raw}` is built once, in JS (`triggerRun` in the
  prelude), so what tf `onTriggerFired` adds to it reaches the main callback. onTriggerFired
  runs locked with a `no-writes` client; a sync callback then runs locked with a sync client
  (`allow_block()` true) — all inside the listener, so atomically with the client's write and
  before its reply. An `async function` callback runs as a background job with an async client.
  A pending promise returned by a sync callback finishes the run when it settles.
* **Statistics** are counted per trigger (`KeyspaceStats`); a failure keeps the texts of both
  error-verbosity levels (`RecordedError`) for LIST to choose from. A failing trigger never
  touches the client's reply.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, MutableSet, Sequence
from typing import Any

from jshost.engine import JSError, JSFunction, JSPromise, JSTerminated
from jshost.host.atomic import AtomicSection, async_token
from jshost.host.conversions import error_text, settled_result, value_error_text
from jshost.host.gates import Gates
from jshost.host.lease import RemoteTriggers
from jshost.host.library import (
    NO_WRITES,
    KeyspaceStats,
    KeyspaceTrigger,
    Library,
    RecordedError,
)
from jshost.host.limits import Limits
from jshost.host.outcomes import TERMINATED, UNREGISTERED, Done, once, text_or_none
from jshost.host.registry import Registry
from jshost.host.scheduler import Scheduler
from jshost.host.streams import INTERNAL_KEYS, StreamConsumers
from jshost.store import ATOMIC_SECTION, Session, Store

log = logging.getLogger("jshost.triggers")

#: Commands that run others: their keys are not in their arguments.
_RUNS_OTHERS = frozenset((b"exec", b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall",
                          b"fcall_ro"))


class Triggers:
    """The keyspace triggers of one host, and the entry of store events into stream triggers:
    the store's listener while any library has a trigger."""

    def __init__(self, registry: Registry, section: AtomicSection, scheduler: Scheduler,
                 limits: Limits, store: Store, session: Callable[[int], Session],
                 muted: MutableSet[Any], gates: Gates) -> None:
        self.registry = registry
        self.gates = gates
        self.section = section
        self.scheduler = scheduler
        self.limits = limits
        self.store = store
        # Origins whose events fire no keyspace trigger: the host's own sessions, and
        # the atomic sections of a remote store.
        self.muted = muted
        muted.add(ATOMIC_SECTION)
        # False while another jshost in front of the same Redis holds the trigger lease.
        self.active = True
        # True while data is being loaded (DEBUG RELOAD / LOADAOF): events are ignored.
        self.loading = False
        self.streams = StreamConsumers(self, session, store.db)
        self.remote: RemoteTriggers | None = None
        notifications = store.notifications
        if notifications is not None:  # a server others share: notifications and the lease
            self.remote = RemoteTriggers(self, notifications)

    # --- events ----------------------------------------------------------------------------

    def on_event(self, origin: object, db: int, event: bytes, key: bytes) -> None:
        """A keyspace event from the store (see the module docstring)."""
        if not self.active or self.loading or key in INTERNAL_KEYS or not self.registry.libraries:
            return
        try:
            self.streams.on_event(db, event, key)
            if origin is None or origin not in self.muted:
                self.fire(db, event, key)
        except Exception:  # nothing here may cost the client its reply
            log.exception("keyspace event %r on %r: trigger dispatch failed", event, key)

    def wants_key(self, key: bytes) -> bool:
        """Whether an event on `key` would fire a keyspace trigger (the remote store waits for
        the events of a client's command only then)."""
        if key in INTERNAL_KEYS:
            return False
        return any(key.startswith(t.prefix) for lib in self.registry.libraries.values()
                   for t in lib.keyspace_triggers.values())

    def wants_command(self, args: Sequence[bytes]) -> bool:
        """Whether a client's command may fire a keyspace trigger (a remote store then holds
        its reply until its events have been delivered)."""
        if not self.tags_sections():
            return False  # (the common case, kept cheap: it is asked of every command)
        if args[0].lower() in _RUNS_OTHERS:
            return True
        return any(self.wants_key(key) for key in self.store.command_info().keys_of(args))

    def tags_sections(self) -> bool:
        """Whether any library has a keyspace trigger (else JS writes need no muting)."""
        return any(lib.keyspace_triggers for lib in self.registry.libraries.values())

    def has_triggers(self) -> bool:
        return any(lib.keyspace_triggers or lib.stream_triggers
                   for lib in self.registry.libraries.values())

    def fire(self, db: int, event: bytes, key: bytes) -> None:
        """Run every keyspace trigger whose prefix `key` starts with. On a replica, only rg
        libraries' triggers fire (tf ignores every event while not a primary)."""
        replica: bool | None = None  # asked once, and only if a tf library has a trigger
        for lib in list(self.registry.libraries.values()):
            if not lib.keyspace_triggers:
                continue
            if lib.era == "tf":
                if replica is None:
                    replica = self.gates.replica
                if replica:
                    continue
            for trigger in list(lib.keyspace_triggers.values()):
                if key.startswith(trigger.prefix) and not lib.runtime.closed:
                    if self.section.held:  # (cannot happen from the stores; be safe)
                        self.scheduler.call_soon(
                            functools.partial(self._run, lib, trigger, db, event, key))
                    else:
                        self._run(lib, trigger, db, event, key)

    # --- one keyspace trigger run -----------------------------------------------------------------

    def _run(self, lib: Library, trigger: KeyspaceTrigger, db: int, event: bytes,
             key: bytes) -> None:
        stats = trigger.stats
        stats.num_triggered += 1
        started = time.monotonic()
        done = once(lambda error: _finish(stats, started, error))
        refused = self.limits.heap.entry_refusal(lib)  # tf's OOM state: counted as failed
        if refused is not None:
            done(RecordedError(refused, refused))
            return
        data = {"event": event.decode("utf-8", "replace"), "key": text_or_none(key),
                "key_raw": key}
        fn = trigger.fn
        section = self.section
        section.enter(NO_WRITES, db, allow_block=True)
        try:
            with self.outcome(lib, f"keyspace trigger {trigger.name}", done):
                invoke = lib.runtime.trigger_run(data)
                if trigger.on_fired is not None:
                    # tf: sync, first, with a no-writes client; a throw fails the run.
                    invoke(trigger.on_fired, section.enter(NO_WRITES, db, allow_block=True),
                           False)
                    self.run_jobs(lib)
                if fn.is_async:
                    self.run_async(lib, invoke, fn, db, done)
                    return
                value = invoke(fn, section.enter(0, db, allow_block=True), False)
                self.run_jobs(lib)
                if isinstance(value, JSPromise):
                    self.watch(lib, value, done)
                else:
                    done(None)
        finally:
            section.exit()

    # --- helpers shared with stream triggers -----------------------------------------------

    @contextlib.contextmanager
    def outcome(self, lib: Library, what: str,
                done: Callable[[RecordedError | None], None]) -> Iterator[None]:
        """Run a callback locked, under the lock's deadline: a stop (time or memory), a JS throw
        or a host failure ends the run as failed, with its recorded error."""
        rt = lib.runtime
        heap = self.limits.heap
        heap.before_entry(lib)
        rt.set_deadline(self.limits.lock_deadline)
        try:
            yield
        except JSTerminated:
            lib.terminations += 1
            heap.stopped(lib)
            rt.set_deadline(None)
            rt.gc()
            done(TERMINATED)
        except JSError as exc:
            done(self.thrown(exc))
        except Exception as exc:  # a conversion the binding refused, say
            log.exception("library %s: %s failed", lib.name, what)
            done(RecordedError(str(exc), str(exc)))
        finally:
            rt.set_deadline(None)
            heap.after_entry(lib)

    def thrown(self, exc: JSError) -> RecordedError:
        """A JS exception as a recorded error."""
        return RecordedError(error_text(exc, 1), error_text(exc, 2))

    def rejected(self, lib: Library, promise: JSPromise) -> RecordedError:
        """A rejected promise's reason as a recorded error."""
        try:
            value = settled_result(promise)
            return RecordedError(value_error_text(value, 1, lib.string_of),
                                 value_error_text(value, 2, lib.string_of))
        except JSTerminated:
            lib.terminations += 1
            return TERMINATED
        except Exception as exc:  # noqa: BLE001 - a reason nested too deep, a closed runtime
            text = getattr(exc, "text", None) or str(exc)
            return RecordedError(text, text)

    @staticmethod
    def run_jobs(lib: Library) -> None:
        """Empty the runtime's job queue (microtasks); a job's failure is only logged."""
        rt = lib.runtime
        if rt.has_pending_jobs:
            for exc in rt.run_jobs():
                log.warning("library %s: a job failed: %s", lib.name, getattr(exc, "text", exc))

    def watch(self, lib: Library, promise: JSPromise, done: Done) -> None:
        """Report the outcome of `promise` to `done`, now if it has settled, else when it does."""
        state = promise.state
        if state != "pending":
            done(None if state == "fulfilled" else self.rejected(lib, promise))
            return
        lib.inflight += 1

        def settle(fulfilled: bool) -> None:
            lib.inflight -= 1
            self.scheduler.close_soon_if_idle(lib)
            done(None if fulfilled else self.rejected(lib, promise))

        lib.runtime.watch(promise, lambda: settle(True), lambda: settle(False))

    def run_async(self, lib: Library, invoke: JSFunction, fn: JSFunction, db: int,
                  done: Done) -> None:
        """An async callback: a background job calls `fn(asyncClient, data)`; the run ends when
        its promise settles (or the job is stopped)."""
        scheduler = self.scheduler
        lib.pending_jobs += 1
        token = async_token(0, db)

        def start() -> None:
            lib.pending_jobs -= 1
            if lib.runtime.closed:
                done(UNREGISTERED)
                return

            def job() -> None:
                try:
                    value = invoke(fn, token, True)
                except JSError as exc:
                    done(self.thrown(exc))
                    return
                if isinstance(value, JSPromise):
                    self.watch(lib, value, done)
                else:
                    done(None)

            if scheduler.run_background(lib, job) is not None:
                done(TERMINATED)  # (ignored if the run had already ended)
            scheduler.close_if_idle(lib)

        scheduler.call_soon(start)

    # --- libraries -------------------------------------------------------------------------

    def library_loaded(self, lib: Library, old: Library | None) -> None:
        self.streams.library_loaded(lib, old)
        self._triggers_changed()

    def library_removed(self, lib: Library) -> None:
        self.streams.library_removed(lib)
        self._triggers_changed()

    def _triggers_changed(self) -> None:
        # Listening only while a trigger exists: the embedded store then works events out.
        self.store.set_listener(self if self.has_triggers() else None)
        if self.remote is not None:
            self.remote.triggers_changed()

    def close(self) -> None:
        self.store.set_listener(None)
        if self.remote is not None:
            self.remote.close()


def _finish(stats: KeyspaceStats, started: float, error: RecordedError | None) -> None:
    """A run has ended: finished, then success or failure; times in ms."""
    elapsed = int((time.monotonic() - started) * 1000)
    stats.num_finished += 1
    if error is None:
        stats.num_success += 1
    else:
        stats.num_failed += 1
        stats.last_error = error
    stats.last_execution_ms = elapsed
    stats.total_execution_ms += elapsed
