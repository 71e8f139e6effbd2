"""Keyspace triggers (SPEC §7), and the routing of store events to stream triggers (§8).

The host (`Host.triggers`) listens to the store's keyspace events: the embedded store calls
`on_event(session, db, event, key)` synchronously, right after the command that caused it and
before its reply (jshost/store/embedded.py); the remote store does the same from keyspace
notifications (jshost/store/remote.py, `RemoteStore.on_keyspace_event`).

* **Muting (§7.4).** An event caused by one of the host's own sessions — those JS commands run
  through (`Host.session`), the ones tf `callAsync` waits on, and on a remote store "inside an
  atomic section" — fires no keyspace trigger. Stream triggers still see it (§7.4 note).
* **Firing (§7.1).** Every keyspace trigger whose prefix the key starts with (bytes; an empty
  prefix matches everything) fires, library by library in registration order.
* **A run (§7.3).** `data = {event, key, key_raw}` is built once, in JS (`triggerRun` in the
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

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from jshost import errors
from jshost.conversions import error_text, settled_result, value_error_text
from jshost.engine import JSError, JSFunction, JSPromise, JSTerminated
from jshost.library import NO_WRITES, KeyspaceStats, KeyspaceTrigger, Library, RecordedError
from jshost.lock import async_token
from jshost.streams import INTERNAL_KEYS, LEASE_KEY, StreamConsumers

if TYPE_CHECKING:
    from jshost.host import Host
    from jshost.store import Session

log = logging.getLogger("jshost.triggers")

TERMINATED = RecordedError(errors.EXECUTION_TERMINATED, errors.EXECUTION_TERMINATED)
UNREGISTERED = RecordedError(errors.FUNCTION_WERE_UNREGISTERED, errors.FUNCTION_WERE_UNREGISTERED)

#: What a run reports when it ends: None for success, else its error.
Done = Callable[[RecordedError | None], None]


def text_or_none(data: bytes) -> str | None:
    """`data` as a string, or None if it is not UTF-8 (`key`, `stream_name`, `record`)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def once(done: Done) -> Done:
    """`done`, called at most once (a run can end by settling or by being stopped)."""
    called = False

    def call(error: RecordedError | None) -> None:
        nonlocal called
        if not called:
            called = True
            done(error)

    return call


class Triggers:
    """The keyspace triggers of one host, and the entry of store events into stream triggers."""

    def __init__(self, host: Host) -> None:
        self.host = host
        # Sessions whose events fire no keyspace trigger (§7.4).
        self.muted: weakref.WeakSet[Any] = weakref.WeakSet()
        # False while another jshost in front of the same Redis holds the trigger lease.
        self.active = True
        self.streams = StreamConsumers(host, self)
        self.remote: RemoteTriggers | None = None
        store = host.store
        if hasattr(store, "start_keyspace_events"):  # a remote store
            self.remote = RemoteTriggers(host, self)
            store.on_keyspace_event = self.on_event
        # (embedded: listening only while a trigger exists, for the store then works events out)
        section = getattr(store, "SECTION", None)
        if section is not None:
            self.muted.add(section)  # remote: events of atomic sections are the host's own

    # --- events ----------------------------------------------------------------------------

    def on_event(self, session: Session | None, db: int, event: bytes, key: bytes) -> None:
        """A keyspace event from the store (see the module docstring)."""
        if not self.active or key in INTERNAL_KEYS or not self.host.libraries:
            return
        try:
            self.streams.on_event(db, event, key)
            if session is None or session not in self.muted:
                self.fire(db, event, key)
        except Exception:  # nothing here may cost the client its reply
            log.exception("keyspace event %r on %r: trigger dispatch failed", event, key)

    def wants_key(self, key: bytes) -> bool:
        """Whether an event on `key` would fire a keyspace trigger (the remote store waits for
        the events of a client's command only then)."""
        if key in INTERNAL_KEYS:
            return False
        return any(key.startswith(t.prefix) for lib in self.host.libraries.values()
                   for t in lib.keyspace_triggers.values())

    def has_triggers(self) -> bool:
        return any(lib.keyspace_triggers or lib.stream_triggers
                   for lib in self.host.libraries.values())

    def fire(self, db: int, event: bytes, key: bytes) -> None:
        """Run every keyspace trigger whose prefix `key` starts with (§7.1)."""
        for lib in list(self.host.libraries.values()):
            if not lib.keyspace_triggers:
                continue
            for trigger in list(lib.keyspace_triggers.values()):
                if key.startswith(trigger.prefix) and not lib.runtime.closed:
                    if self.host.lock.held:  # (cannot happen from the stores; be safe)
                        self.host.call_soon(
                            lambda lib=lib, t=trigger: self._run(lib, t, db, event, key))
                    else:
                        self._run(lib, trigger, db, event, key)

    # --- one keyspace trigger run (§7.3) ---------------------------------------------------

    def _run(self, lib: Library, trigger: KeyspaceTrigger, db: int, event: bytes,
             key: bytes) -> None:
        host = self.host
        stats = trigger.stats
        stats.num_triggered += 1
        started = time.monotonic()
        done = once(lambda error: _finish(stats, started, error))
        data = {"event": event.decode("utf-8", "replace"), "key": text_or_none(key),
                "key_raw": key}
        fn = trigger.fn
        lock = host.lock
        lock.enter(NO_WRITES, db, allow_block=True)
        try:
            with self.outcome(lib, f"keyspace trigger {trigger.name}", done):
                invoke = lib.entry["triggerRun"](data)
                if trigger.on_fired is not None:
                    # tf: sync, first, with a no-writes client; a throw fails the run (§7.3).
                    invoke(trigger.on_fired, lock.enter(NO_WRITES, db, allow_block=True), False)
                    self.run_jobs(lib)
                if fn.is_async:
                    self.run_async(lib, invoke, fn, db, done)
                    return
                value = invoke(fn, lock.enter(0, db, allow_block=True), False)
                self.run_jobs(lib)
                if isinstance(value, JSPromise):
                    self.watch(lib, value, done)
                else:
                    done(None)
        finally:
            lock.exit()

    # --- helpers shared with stream triggers -----------------------------------------------

    @contextlib.contextmanager
    def outcome(self, lib: Library, what: str,
                done: Callable[[RecordedError | None], None]) -> Iterator[None]:
        """Run a callback locked, under the lock's deadline: a stop (time or memory), a JS throw
        or a host failure ends the run as failed, with its recorded error."""
        rt = lib.runtime
        rt.set_deadline(self.host.lock_deadline)
        try:
            yield
        except JSTerminated:
            lib.terminations += 1
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

    def thrown(self, exc: JSError) -> RecordedError:
        """A JS exception as a recorded error."""
        return RecordedError(error_text(exc, 1), error_text(exc, 2))

    def rejected(self, lib: Library, promise: JSPromise) -> RecordedError:
        """A rejected promise's reason as a recorded error (§6.4)."""
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
        """Empty the runtime's job queue (microtasks, §4.4); a job's failure is only logged."""
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
        host = self.host
        lib.inflight += 1

        def settle(fulfilled: bool) -> None:
            lib.inflight -= 1
            host.call_soon(lambda: host._close_if_idle(lib))
            done(None if fulfilled else self.rejected(lib, promise))

        lib.entry["watch"](promise, lambda: settle(True), lambda: settle(False))

    def run_async(self, lib: Library, invoke: JSFunction, fn: JSFunction, db: int,
                  done: Done) -> None:
        """An async callback: a background job calls `fn(asyncClient, data)`; the run ends when
        its promise settles (or the job is stopped)."""
        host = self.host
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

            if host._run_background(lib, job) is not None:
                done(TERMINATED)  # (ignored if the run had already ended)
            host._close_if_idle(lib)

        host.call_soon(start)

    # --- libraries -------------------------------------------------------------------------

    def library_loaded(self, lib: Library, old: Library | None) -> None:
        self.streams.library_loaded(lib, old)
        self._triggers_changed()

    def library_removed(self, lib: Library) -> None:
        self.streams.library_removed(lib)
        self._triggers_changed()

    def _triggers_changed(self) -> None:
        if self.remote is not None:
            self.remote.triggers_changed()
            return
        store = self.host.store
        if hasattr(store, "on_keyspace_event"):
            # The embedded store works keyspace events out only while someone listens.
            listening = store.on_keyspace_event is not None
            if self.has_triggers() and not listening:
                store.on_keyspace_event = self.on_event
            elif not self.has_triggers() and store.on_keyspace_event == self.on_event:
                store.on_keyspace_event = None

    def close(self) -> None:
        store = self.host.store
        if getattr(store, "on_keyspace_event", None) == self.on_event:
            store.on_keyspace_event = None
        if self.remote is not None:
            self.remote.close()


def _finish(stats: KeyspaceStats, started: float, error: RecordedError | None) -> None:
    """A run has ended (§7.3): finished, then success or failure; times in ms."""
    elapsed = int((time.monotonic() - started) * 1000)
    stats.num_finished += 1
    if error is None:
        stats.num_success += 1
    else:
        stats.num_failed += 1
        stats.last_error = error
    stats.last_execution_ms = elapsed
    stats.total_execution_ms += elapsed


# --- remote store: keyspace notifications and the trigger lease ------------------------------------

#: Take or renew the lease, atomically (Lua): 1 if this instance (ARGV[1]) holds it now (renewed
#: for ARGV[2] ms), 2 if it was taken over from a stale holder, 0 if another jshost holds it. A
#: holder is live only if the key is a string of 32 hex digits (a jshost instance id) with a
#: time to live: a value without one, or of another form or type, was not written by a jshost
#: and would otherwise stop triggers on every instance for good.
_ACQUIRE = (b"local key, me, ms = KEYS[1], ARGV[1], ARGV[2] "
            b"local kind = redis.call('type', key)['ok'] "
            b"if kind == 'none' then redis.call('set', key, me, 'PX', ms) return 1 end "
            b"if kind == 'string' then "
            b"local holder = redis.call('get', key) "
            b"if holder == me then redis.call('pexpire', key, ms) return 1 end "
            b"if redis.call('pttl', key) > 0 and string.len(holder) == 32 "
            b"and not string.find(holder, '[^0-9a-f]') then return 0 end "
            b"end "
            b"redis.call('set', key, me, 'PX', ms) return 2")
#: Give the lease up if it is still ours.
_RELEASE = (b"if redis.call('get', KEYS[1]) == ARGV[1] then "
            b"return redis.call('del', KEYS[1]) else return 0 end")
#: Commands that run others: their keys are not in their arguments.
_RUNS_OTHERS = frozenset((b"exec", b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall",
                          b"fcall_ro"))


class RemoteTriggers:
    """Triggers in front of a real Redis (SPEC §11 rows 7-8).

    Several jshost instances may serve one Redis; only one runs triggers and stream consumers:
    the holder of the *lease*, the key `jshost:triggers:lease` (value: the instance's id), taken
    with `SET NX PX <lease_ms>` and renewed every `lease_ms / 3` (compare-and-expire, in Lua).
    The holder turns keyspace notifications on and subscribes to them
    (`RemoteStore.start_keyspace_events`); the others keep trying to take the lease, and one of
    them takes over within `lease_ms` of the holder stopping (at once when it stops gracefully:
    it deletes the lease). A new holder scans for streams and resumes each stream trigger from
    the positions kept in Redis.

    On the holder, a client command through jshost waits for its keyspace events (and so for
    sync keyspace triggers) before its reply, when one of its keys matches a keyspace trigger.
    Writes that reach Redis otherwise — clients bypassing jshost, and the clients of the other
    instances — fire triggers asynchronously, as their notifications arrive.
    """

    lease_ms = 10_000

    def __init__(self, host: Host, triggers: Triggers) -> None:
        self.host = host
        self.triggers = triggers
        self.store: Any = host.store
        self.instance = uuid.uuid4().hex.encode()
        self.leader = False
        self._task: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None  # the first try for the lease
        self._leading: asyncio.Event | None = None
        self._closed = False
        triggers.active = False  # until this instance holds the lease
        self.store.keyspace_filter = self.wants_command
        self.store.sections_tagged = self.has_keyspace_triggers
        # (Not a trigger matter, but this is where the host wires its remote store: a JS
        # call's waits for the backend end with the call's time limit.)
        self.store.section_limit = lambda: host.lock_deadline

    def has_keyspace_triggers(self) -> bool:
        """Whether any library has a keyspace trigger (else JS writes need no muting)."""
        return any(lib.keyspace_triggers for lib in self.host.libraries.values())

    def wants_command(self, args: Sequence[bytes]) -> bool:
        """Whether a client's command may fire a keyspace trigger (then it waits for them)."""
        if not self.has_keyspace_triggers():
            return False  # (the common case, kept cheap: it is asked of every command)
        if args[0].lower() in _RUNS_OTHERS:
            return True
        return any(self.triggers.wants_key(key) for key in self.store.command_info().keys_of(args))

    @property
    def leading(self) -> asyncio.Event:
        """Set while this instance holds the lease."""
        if self._leading is None:
            self._leading = asyncio.Event()
            if self.leader:
                self._leading.set()
        return self._leading

    async def start(self) -> None:
        """Try for the lease now (raising `BackendError` if Redis refuses notifications), then
        keep renewing it, or trying again, in the background. A start already under way (the
        first trigger's load begins one) is awaited, not skipped: on return, this instance
        leads or knows it does not."""
        if self._closed:
            return
        if self._starting is None or (self._starting.done() and self._task is None):
            self._starting = asyncio.get_running_loop().create_task(self._first_tick())
        await asyncio.shield(self._starting)

    async def _first_tick(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await self._tick()
        except BaseException:
            self._task.cancel()  # a refusal stops here (a later load tries again)
            self._task = None
            raise

    def triggers_changed(self) -> None:
        """A library came or went: start on the first trigger (the server may not have)."""
        if self._task is None and not self._closed and self.triggers.has_triggers():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # started by `Host.start_triggers()` (or the next load under a loop)
            loop.create_task(self._start_logged())

    async def _start_logged(self) -> None:
        try:
            await self.start()
        except Exception as exc:  # noqa: BLE001 - logged; the server keeps serving
            log.error("triggers could not start: %s", exc)

    async def _run(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self._tick()
            except Exception as exc:  # noqa: BLE001 - tried again on the next round
                log.error("trigger lease: %s", exc)

    async def _tick(self) -> None:
        store = self.store
        ms = str(self.lease_ms).encode()
        try:
            (held,) = store.round_trip([[b"EVAL", _ACQUIRE, b"1", LEASE_KEY, self.instance, ms]])
        except Exception as exc:  # a leader counts it as lost
            if not self.leader:
                raise
            log.warning("could not renew the trigger lease: %s", exc)
            held = 0
        if held == 2:
            log.warning("the trigger lease %s held a value no jshost wrote (no time to live, or "
                        "not an instance id): this jshost (%s) took it over",
                        LEASE_KEY.decode(), self.instance.decode())
        if held not in (1, 2):
            if self.leader:
                self._lose("the trigger lease was lost")
            return
        if not self.leader or not store.keyspace_events_running:  # (the event connection dropped)
            await self._lead()
        else:
            self._assert_notifications()

    def _assert_notifications(self) -> None:
        """While leading, put back notify-keyspace-events if someone took out what triggers need
        (logged by `RemoteStore.ensure_notifications`)."""
        try:
            self.store.ensure_notifications()
        except Exception as exc:  # noqa: BLE001 - tried again on the next round
            log.error("triggers need keyspace notifications: %s", exc)

    async def _lead(self) -> None:
        try:
            await self.store.start_keyspace_events(self.instance)
        except Exception:
            self._release()
            self.leader = False
            raise
        if self._closed:
            return
        first = not self.leader
        self.leader = True
        self.triggers.active = True
        self.leading.set()
        if first:
            log.info("this jshost (%s) runs the triggers", self.instance.decode())
        self.triggers.streams.resume_all()

    def _lose(self, reason: str) -> None:
        log.warning("%s: this jshost stops running triggers", reason)
        self.leader = False
        self.triggers.active = False
        if self._leading is not None:
            self._leading.clear()
        self.store.stop_keyspace_events()
        for lib in self.host.libraries.values():
            for trigger in lib.stream_triggers.values():
                trigger.streams.clear()

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self.store.round_trip([[b"EVAL", _RELEASE, b"1", LEASE_KEY, self.instance]])

    def close(self) -> None:
        """Stop: give the lease up (another instance takes over at once)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        if self.leader:
            self.leader = False
            self.triggers.active = False
            self._release()
        self.store.stop_keyspace_events()
        self.store.keyspace_filter = None
        self.store.sections_tagged = None
        self.store.section_limit = None
