"""Stream triggers (stream consumers): reading, acknowledging, trimming, positions (as RedisGears'
stream_reader.rs and stream_run_ctx.rs do them).

Every stream key (in the store's default database: 0, or the remote URL's) whose name starts
with a stream trigger's prefix is read by that trigger from its first entry on, in order. A
trigger keeps one `StreamState` per stream (jshost/host/library.py), shared with the trigger that
replaces it on upgrade.

* **When.** A stream event on a matching key (`xadd`, and the events that can bring a stream
  into being: `restore`, `rename_to`, `copy_to`, ...) asks for the stream to be *pumped*. Writes
  made by JS are not muted here. A stream that existed before its trigger did is
  found by a `SCAN … TYPE stream` when the trigger is registered (or its library loaded at
  start-up), run as a later loop callback.
* **Pumping** runs locked: for each trigger on the stream, read the next entry (`XRANGE`) while
  fewer than `window` entries are in flight, and hand it to the callback. A sync callback runs
  there and then, and is acknowledged when it returns (tf: when the promise it returns settles).
  An async callback runs as a background job; its acknowledgement pumps the stream again. A
  callback that throws records `last_error`; processing goes on. At most `PUMP_BUDGET` entries
  are read per trigger and pass, then the pump yields to the event loop and resumes.
* **On a replica** (`Gates.replica`) nothing new is read: an entry in flight still finishes and
  counts, but no entry after it is delivered, nothing is trimmed and no position is written.
  Back on a primary, every trigger scans again and goes on after its position.
* **Trimming.** When an acknowledgement removes the oldest entry in flight of a trigger
  and some trigger on the stream trims, the stream is trimmed with `XTRIM <key> MINID <id>`,
  `<id>` being the smallest over all triggers on the stream of their oldest entry in flight,
  or the entry after their last read.
* **Positions persist in the store**, in the hash `jshost:stream-positions` (in the default
  database): field `<library>\\0<trigger>\\0<stream name>`, value `"<resume-id> <last-read-id>"`
  (`<ms>-<seq>`; the last-read part is empty when nothing was read). `<resume-id>` is where
  reading starts again: the oldest entry still in flight, else the entry after the last one
  read. They are written at the end of each pumping pass (in the same atomic section as the
  callbacks of that pass), so a new host on the same store resumes where this one stopped:
  exactly once on the embedded store, at least once after a crash. A deleted stream (`del`,
  `expired`, `evicted`, `rename_from`) drops its states and fields; a library deleted, or a
  stream trigger left out of an upgrade, drops its fields. FLUSHALL/FLUSHDB is noticed by the
  hash having vanished while this host had written to it: every state is then dropped, so each
  stream is read again from its first entry.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jshost.engine import JSPromise
from jshost.errors import ReplicaErrors
from jshost.host.library import (
    Library,
    RecordedError,
    StreamId,
    StreamState,
    StreamTrigger,
    format_id,
)
from jshost.host.outcomes import once, text_or_none
from jshost.replies import ErrorReply
from jshost.store import Session

if TYPE_CHECKING:
    from jshost.host.triggers import Triggers

log = logging.getLogger("jshost.streams")

POSITIONS_KEY = b"jshost:stream-positions"
LEASE_KEY = b"jshost:triggers:lease"  # remote store: who runs triggers (jshost/host/lease.py)
#: Keys jshost keeps in the store for itself: their events fire nothing.
INTERNAL_KEYS = frozenset((POSITIONS_KEY, LEASE_KEY))
#: Entries one trigger reads from one stream in one pass before the pump yields to the loop.
PUMP_BUDGET = 1000
#: Seconds of callbacks one pass may run before it yields to the loop: RedisGears takes the lock
#: for each record, and clients are served in between, so a slow consumer must not hold the
#: loop for a whole batch.
PUMP_SLICE = 0.005
#: Entries read by one XRANGE (for callbacks that finish at once: sync ones, mostly).
READ_AHEAD = 64
#: Events that can make a matching key a stream with entries to read.
START_EVENTS = frozenset((b"xadd", b"restore", b"rename_to", b"copy_to", b"xsetid",
                          b"xgroup-create", b"xautoclaim", b"xclaim"))
#: Events after which the key is gone.
GONE_EVENTS = frozenset((b"del", b"expired", b"evicted", b"rename_from"))
_MAX_SEQ = 2**64 - 1


def parse_id(text: bytes | str) -> StreamId:
    ms, _, seq = (text.decode() if isinstance(text, bytes) else text).partition("-")
    return int(ms), int(seq or 0)


def successor(stream_id: StreamId) -> StreamId:
    ms, seq = stream_id
    return (ms, seq + 1) if seq < _MAX_SEQ else (ms + 1, 0)


def position_field(lib: str, trigger: str, stream: bytes) -> bytes:
    return lib.encode("utf-8", "surrogatepass") + b"\0" + trigger.encode(
        "utf-8", "surrogatepass") + b"\0" + stream


class StreamConsumers:
    """The stream triggers of one host (see the module docstring)."""

    def __init__(self, triggers: Triggers, session: Callable[[int], Session], db: int) -> None:
        self.triggers = triggers
        self.registry = triggers.registry
        self.section = triggers.section
        self.scheduler = triggers.scheduler
        self._session = session  # the host's own session on a database
        self.db = db  # the store's default database: where streams are read
        self._scheduled: set[bytes] = set()  # streams with a pump queued on the loop
        self._pumping = False
        self._to_trim: set[bytes] = set()
        self._touched: set[bytes] = set()  # streams written to while being pumped
        self._wrote_positions = False  # the positions hash exists, as far as we know
        triggers.gates.observers.append(self.role_changed)

    # --- the store ---------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        return self._session(self.db)

    def _call(self, *args: bytes) -> Any:
        return self.session.call(list(args))

    # --- events ------------------------------------------------------------------------------

    def has_triggers(self) -> bool:
        return any(lib.stream_triggers for lib in self.registry.libraries.values())

    def readers(self, key: bytes) -> list[tuple[Library, StreamTrigger]]:
        """The stream triggers reading `key`, library by library in registration order."""
        return [(lib, t) for lib in self.registry.libraries.values()
                for t in lib.stream_triggers.values() if key.startswith(t.prefix)]

    def on_event(self, db: int, event: bytes, key: bytes) -> None:
        if db != self.db or not self.triggers.active:
            return
        if self._pumping:
            self._touched.add(key)
        if event in GONE_EVENTS:
            self.drop(key)
        elif event in START_EVENTS and self.readers(key) and not self.triggers.gates.replica:
            self.request(key)

    def request(self, key: bytes) -> None:
        """Pump `key` now, or as soon as the lock is free."""
        if self.section.held or self._pumping:
            self._schedule(key)
        else:
            self.pump(key)

    def _schedule(self, key: bytes) -> None:
        if key not in self._scheduled:
            self._scheduled.add(key)
            self.scheduler.call_soon(lambda: self._scheduled_pump(key))

    def _scheduled_pump(self, key: bytes) -> None:
        self._scheduled.discard(key)
        if self.triggers.active:
            self.request(key)

    def drop(self, key: bytes) -> None:
        """The stream is gone: its states and positions too."""
        fields = []
        for lib in self.registry.libraries.values():
            for trigger in lib.stream_triggers.values():
                state = trigger.streams.pop(key, None)
                if state is not None and state.saved:
                    fields.append(position_field(lib.name, trigger.name, key))
        self._to_trim.discard(key)
        if fields:
            self._forget(fields)

    def _forget(self, fields: list[bytes]) -> None:
        reply = self._call(b"HDEL", POSITIONS_KEY, *fields)
        if isinstance(reply, ErrorReply):
            log.warning("could not drop stream positions: %s", reply)
        elif not self.triggers.has_triggers() or self._call(b"EXISTS", POSITIONS_KEY) == 0:
            self._wrote_positions = False

    # --- libraries ---------------------------------------------------------------------------

    def library_loaded(self, lib: Library, old: Library | None) -> None:
        if old is not None:
            gone = [t for name, t in old.stream_triggers.items() if name not in lib.stream_triggers]
            self._forget_triggers(old, gone)
        for trigger in lib.stream_triggers.values():
            if not trigger.streams:  # new (an upgraded one keeps its streams)
                self.scheduler.call_soon(functools.partial(self.scan, lib, trigger))

    def library_removed(self, lib: Library) -> None:
        self._forget_triggers(lib, list(lib.stream_triggers.values()))

    def _forget_triggers(self, lib: Library, triggers: list[StreamTrigger]) -> None:
        fields = [position_field(lib.name, t.name, key) for t in triggers
                  for key, state in t.streams.items() if state.saved]
        for t in triggers:
            t.streams.clear()  # in-flight acknowledgements find no state and are ignored
        if fields:
            try:
                self._forget(fields)
            except Exception:
                log.exception("could not drop the positions of library %s", lib.name)

    def role_changed(self, replica: bool) -> None:
        """A replica reads nothing new; back on a primary, every stream trigger goes on after
        its position (a scan, as at start-up)."""
        if replica:
            return
        for lib in list(self.registry.libraries.values()):
            for trigger in lib.stream_triggers.values():
                self.scheduler.call_soon(functools.partial(self.scan, lib, trigger, True))

    def scan(self, lib: Library, trigger: StreamTrigger, every: bool = False) -> None:
        """Find the streams that existed before the trigger (`every`: all its streams) and
        pump each."""
        if lib.retired or not self.triggers.active:
            return
        pattern = _glob_escape(trigger.prefix) + b"*"
        cursor = b"0"
        while True:
            reply = self._call(b"SCAN", cursor, b"MATCH", pattern, b"TYPE", b"stream",
                               b"COUNT", b"1000")
            if isinstance(reply, ErrorReply):
                log.warning("library %s: stream trigger %s could not scan: %s", lib.name,
                            trigger.name, reply)
                return
            cursor, keys = reply
            for key in keys:
                if every or key not in trigger.streams:
                    self.request(key)
            if cursor in (b"0", 0):
                return

    def resume_all(self, keep_positions: bool = False) -> None:
        """Scan for every stream trigger: a remote instance that just took the lease over
        (positions read again from the store), or the end of a reload (`keep_positions`: the
        ones restored in memory; every stream is pumped)."""
        for lib in list(self.registry.libraries.values()):
            for trigger in lib.stream_triggers.values():
                if not keep_positions:
                    trigger.streams.clear()
                self.scheduler.call_soon(
                    functools.partial(self.scan, lib, trigger, keep_positions))
        if not keep_positions:
            self._wrote_positions = False

    # --- pumping -----------------------------------------------------------------------------

    def pump(self, key: bytes) -> None:
        """Read and dispatch what the triggers on `key` may take now (one locked section)."""
        readers = self.readers(key)
        if not readers:
            return
        more = False
        replica = self.triggers.gates.replica
        self.section.enter(0, self.db, allow_block=True)
        self._pumping = True
        self._touched.clear()
        try:
            if replica:  # read nothing, trim nothing, write nothing: a replica's data is not ours
                if key in self._to_trim:
                    self._to_trim.discard(key)
                    log.info(ReplicaErrors.TRIM_DENIED)
                return
            self._check_flushed()
            for lib, trigger in readers:
                if not lib.runtime.closed:
                    more |= self._pump_one(lib, trigger, key)
            self._trim(key, readers)
            self._save(key, readers)
        except Exception:
            log.exception("stream %r: processing failed", key)
        finally:
            self._pumping = False
            self.section.exit()
        if more:
            self._schedule(key)

    def _check_flushed(self) -> None:
        """FLUSHALL/FLUSHDB took the positions hash with it: start every stream again."""
        if self._wrote_positions and self._call(b"EXISTS", POSITIONS_KEY) == 0:
            log.info("stream positions were flushed: stream triggers start again")
            self._wrote_positions = False
            for lib in self.registry.libraries.values():
                for trigger in lib.stream_triggers.values():
                    trigger.streams.clear()

    def _state(self, lib: Library, trigger: StreamTrigger, key: bytes) -> StreamState:
        state = trigger.streams.get(key)
        if state is None:
            state = trigger.streams[key] = StreamState()
            saved = self._call(b"HGET", POSITIONS_KEY, position_field(lib.name, trigger.name, key))
            if isinstance(saved, bytes):
                resume, _, last = saved.partition(b" ")
                state.next_id = parse_id(resume)
                state.last_read = parse_id(last) if last else None
                state.saved = True
        return state

    def _pump_one(self, lib: Library, trigger: StreamTrigger, key: bytes) -> bool:
        """Read entries for one trigger; True if it stopped on its budget (more to read).
        Entries are read a few at a time; a batch is thrown away (and read again) as soon as
        the stream changes under it (a callback's XDEL, say: any event on the key)."""
        state = self._state(lib, trigger, key)
        window = max(1, trigger.window)
        budget = PUMP_BUDGET
        started = time.monotonic()
        batch: list[Any] = []
        at_end = False  # the last read reached the end of the stream
        while len(state.pending) < window:
            if trigger.streams.get(key) is not state:
                return False  # dropped by the callback (it deleted the stream)
            if budget == 0 or time.monotonic() - started > PUMP_SLICE:
                return True
            if key in self._touched:
                self._touched.discard(key)
                batch, at_end = [], False
            if not batch:
                if at_end:
                    return False
                count = min(budget, READ_AHEAD)
                reply = self._call(b"XRANGE", key, format_id(state.next_id).encode(), b"+",
                                   b"COUNT", str(count).encode())
                if isinstance(reply, ErrorReply) or not isinstance(reply, list):
                    trigger.streams.pop(key, None)  # not (or no longer) a stream
                    return False
                if not reply:
                    if state.last_read is None and not state.pending and not state.saved and \
                            self._call(b"TYPE", key) != b"stream":
                        trigger.streams.pop(key, None)  # no stream after all
                    return False
                batch = reply[::-1]
                at_end = len(reply) < count
            raw_id, fields = batch.pop()
            entry_id = parse_id(raw_id)
            state.last_read = entry_id
            state.next_id = successor(entry_id)
            state.pending[entry_id] = time.monotonic()
            state.dirty = True
            budget -= 1
            self._dispatch(lib, trigger, key, state, entry_id, fields or [])
        return False

    def _dispatch(self, lib: Library, trigger: StreamTrigger, key: bytes, state: StreamState,
                  entry_id: StreamId, fields: list[bytes]) -> None:
        """Hand one entry to the trigger's callback."""
        pairs = [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]
        data = {
            "id": [entry_id[0], entry_id[1]],  # ints become BigInts
            "stream_name": text_or_none(key),
            "stream_name_raw": key,
            "record": [[text_or_none(f), text_or_none(v)] for f, v in pairs],
            "record_raw": [[f, v] for f, v in pairs],
        }
        triggers = self.triggers

        def ack(error: RecordedError | None) -> None:
            self._ack(lib, trigger, key, state, entry_id, error)

        done = once(ack)
        refused = triggers.limits.heap.entry_refusal(lib)  # tf's OOM state: acknowledged failed
        if refused is not None:
            done(RecordedError(refused, refused))
            return
        fn = trigger.fn
        with triggers.outcome(lib, f"stream trigger {trigger.name}", done):
            invoke = lib.runtime.trigger_run(data)
            if fn.is_async:
                triggers.run_async(lib, invoke, fn, self.db, done)
                return
            value = invoke(fn, self.section.enter(0, self.db, allow_block=True), False)
            triggers.run_jobs(lib)
            if lib.era == "tf" and isinstance(value, JSPromise):
                triggers.watch(lib, value, done)  # tf waits for it (rg: any return is done)
            else:
                done(None)

    def _ack(self, lib: Library, trigger: StreamTrigger, key: bytes, state: StreamState,
             entry_id: StreamId, error: RecordedError | None) -> None:
        """An entry is done: statistics, then trimming and reading on."""
        oldest = next(iter(state.pending), None) == entry_id
        started = state.pending.pop(entry_id, None)
        if started is None:
            return
        processed = int((time.monotonic() - started) * 1000)
        lag = max(0, int(time.time() * 1000) - entry_id[0])
        state.records_processed += 1
        state.last_processed_ms = processed
        state.total_processed_ms += processed
        state.last_lag_ms = lag
        state.total_lag_ms += lag
        if error is not None:
            state.last_error = error
        state.dirty = True
        if trigger.streams.get(key) is not state:
            return  # the stream (or the trigger) is gone
        if oldest and any(t.trim for _, t in self.readers(key)):
            self._to_trim.add(key)
        if not self._pumping:
            self._schedule(key)  # an async acknowledgement: save, trim, read on

    def _trim(self, key: bytes, readers: list[tuple[Library, StreamTrigger]]) -> None:
        if key not in self._to_trim:
            return
        self._to_trim.discard(key)
        ids = []
        for _, trigger in readers:
            state = trigger.streams.get(key)
            if state is None:
                return  # a trigger that has not read it yet: keep everything
            ids.append(state.resume_id())
        if ids:
            reply = self._call(b"XTRIM", key, b"MINID", format_id(min(ids)).encode())
            if isinstance(reply, ErrorReply):
                log.warning("stream %r: XTRIM failed: %s", key, reply)

    def _save(self, key: bytes, readers: list[tuple[Library, StreamTrigger]]) -> None:
        """Write the positions that changed (one HSET, in the pass's atomic section)."""
        args: list[bytes] = []
        states = []
        for lib, trigger in readers:
            state = trigger.streams.get(key)
            if state is not None and state.dirty:
                last = state.last_read_id or ""
                args += [position_field(lib.name, trigger.name, key),
                         f"{format_id(state.resume_id())} {last}".encode()]
                states.append(state)
        if not args:
            return
        reply = self._call(b"HSET", POSITIONS_KEY, *args)
        if isinstance(reply, ErrorReply):
            log.warning("could not save stream positions: %s", reply)
            return
        self._wrote_positions = True
        for state in states:
            state.dirty = False
            state.saved = True


def _glob_escape(data: bytes) -> bytes:
    """`data` as a literal in a SCAN MATCH pattern."""
    out = bytearray()
    for byte in data:
        if byte in b"*?[]\\":
            out.append(0x5C)
        out.append(byte)
    return bytes(out)
