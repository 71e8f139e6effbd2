"""A loaded library: its runtime, what it registered, and the rules of registration.

A `Library` owns one JS runtime (one heap, one deadline, `jshost.engine.LibraryRuntime`) with
the prelude installed. The prelude's JS calls back into `Natives` (jshost/host/natives.py);
registrations land here, where the
checks that need Python (async detection, flags, context, names, duplicates) run, as RedisGears'
`register_function` & co. (v8_native_functions.rs) make them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jshost import errors
from jshost.engine import JSFunction, JSThrow, JSValueTooLarge, LibraryRuntime
from jshost.errors import Era
from jshost.host.prologue import Prologue

NO_WRITES, ALLOW_OOM, RAW_ARGUMENTS = 1, 2, 4
# LIST shows flags in this order (RedisGears' function_list_command.rs).
FLAG_BITS: dict[str, int] = {"no-writes": NO_WRITES, "allow-oom": ALLOW_OOM,
                             "raw-arguments": RAW_ARGUMENTS}

def flag_names(bits: int) -> list[str]:
    """Flag names in LIST order."""
    return [name for name, bit in FLAG_BITS.items() if bits & bit]


@dataclass
class FunctionInfo:
    """A registered function. `is_async` is how it was registered (LIST shows it; the sync
    command refuses it); `coroutine` is whether the JS function itself is async (where it runs)."""

    name: str
    fn: JSFunction
    flags: int
    is_async: bool
    coroutine: bool
    description: str | None = None


@dataclass(frozen=True)
class RecordedError:
    """A trigger's failure, kept as the texts of both `error-verbosity` levels: LIST picks
    one when it runs. Worked out when the failure happens, while the runtime that threw is
    alive (an upgrade closes it, but keeps the statistics)."""

    text: str  # level 1
    verbose: str  # level 2

    def at(self, verbosity: int) -> str:
        return self.verbose if verbosity >= 2 else self.text


@dataclass
class KeyspaceStats:
    """Counters of a keyspace trigger; kept across upgrades."""

    num_triggered: int = 0
    num_finished: int = 0
    num_success: int = 0
    num_failed: int = 0
    last_error: RecordedError | None = None  # its text is chosen when LIST runs
    last_execution_ms: int = 0
    total_execution_ms: int = 0


@dataclass
class KeyspaceTrigger:
    name: str
    prefix: bytes
    fn: JSFunction
    description: str | None = None
    on_fired: JSFunction | None = None
    stats: KeyspaceStats = field(default_factory=KeyspaceStats)


StreamId = tuple[int, int]  # (ms, seq)


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


@dataclass
class StreamState:
    """One stream as one stream trigger reads it (RedisGears' stream_reader.rs); kept across
    upgrades."""

    last_read: StreamId | None = None  # the id of the last entry read
    next_id: StreamId = (0, 0)  # where the next read starts (inclusive)
    # Entries read and not yet acknowledged, in the order read, with when each started
    # (time.monotonic()).
    pending: dict[StreamId, float] = field(default_factory=dict)
    records_processed: int = 0
    last_processed_ms: int = 0
    total_processed_ms: int = 0
    last_lag_ms: int = 0
    total_lag_ms: int = 0
    last_error: RecordedError | None = None
    saved: bool = False  # its position is in the store (see jshost/host/streams.py)
    dirty: bool = False  # its position changed since it was last saved

    @property
    def last_read_id(self) -> str | None:
        return None if self.last_read is None else format_id(self.last_read)

    @property
    def pending_ids(self) -> list[str]:
        return [format_id(i) for i in self.pending]

    def resume_id(self) -> StreamId:
        """Where reading starts again after a restart: the oldest entry still in flight, else
        the one after the last read (also the `XTRIM … MINID` id of trimming)."""
        if self.pending:
            return next(iter(self.pending))
        return self.next_id


@dataclass
class StreamTrigger:
    name: str
    prefix: bytes
    fn: JSFunction
    window: int = 1
    trim: bool = False
    description: str | None = None
    streams: dict[bytes, StreamState] = field(default_factory=dict)  # per stream


@dataclass
class RemoteFunction:
    name: str
    fn: JSFunction


class Library:
    """One library: runtime, prologue, configuration and registrations."""

    def __init__(self, prologue: Prologue, code: str, era: Era, config_text: str | None,
                 user: str, runtime: LibraryRuntime) -> None:
        self.name = prologue.name
        self.prologue = prologue
        self.code = code
        self.era: Era = era
        self.config_text = config_text
        self.user = user
        self.functions: dict[str, FunctionInfo] = {}
        self.keyspace_triggers: dict[str, KeyspaceTrigger] = {}
        self.stream_triggers: dict[str, StreamTrigger] = {}
        self.remote_functions: dict[str, RemoteFunction] = {}
        self.loading = False  # registrations are allowed only while the top level runs
        self.deleted = False  # deleted or replaced: resolve/reject and block() refuse
        self.retired = False  # no longer in the registry; closed once its work is done
        self.previous: Library | None = None  # the library an upgrade replaces
        self.pending_jobs = 0  # background jobs queued and not yet started
        self.jobs_refused = 0  # jobs refused since the queue was last empty (over the limit)
        self.terminations = 0  # runs stopped for time or memory (INFO)
        self.inflight = 0  # replies waiting on this runtime's promises
        self.pending_async_calls: list[str] = []  # tf callAsync commands still waiting
        self.runtime = runtime

    def install(self, natives: Mapping[str, Callable[..., Any]], texts: Mapping[str, Any],
                engine_version: str, keep_engine_globals: bool = False) -> None:
        """Run the prelude: sandbox the globals and build `redis` for this library's era."""
        config_json = self.config_text if self.config_text is not None else "{}"
        self.runtime.install(natives, texts, self.era, config_json, engine_version,
                             keep_engine_globals)

    def has_registrations(self) -> bool:
        """Functions, stream and keyspace triggers count; remote functions do not (RedisGears'
        function_load_command.rs)."""
        return bool(self.functions or self.stream_triggers or self.keyspace_triggers)

    def string_of(self, value: Any) -> str:
        """JS `String(value)` in this runtime (a text past `max-reply-size`: that error's)."""
        try:
            return self.runtime.string_of(value)
        except JSValueTooLarge as exc:
            return str(exc)

    def close(self) -> None:
        """Free the runtime (handles into it fail cleanly from now on)."""
        if not self.runtime.closed:
            self.runtime.close()

    # --- registration: called from JS through the natives -----------------------------------------

    def register_function(self, name: str, fn: JSFunction, flags: list[Any], is_async_api: bool,
                          description: str | None) -> None:
        era = self.era
        coroutine = fn.is_async
        if not is_async_api and coroutine:
            raise JSThrow(errors.function_is_async(era))
        bits = 0
        for flag in flags:
            if not isinstance(flag, str):
                raise JSThrow(errors.FLAGS_WRONG_TYPE)
            if flag not in FLAG_BITS:
                raise JSThrow(errors.unknown_flag(flag))
            bits |= FLAG_BITS[flag]
        if not self.loading:
            raise JSThrow(errors.FUNCTION_OUT_OF_CONTEXT)
        self._check_name("function", name)
        if name in self.functions:
            raise JSThrow(errors.function_already_exists(name))
        self.functions[name] = FunctionInfo(name, fn, bits, is_async_api, coroutine, description)

    def register_keyspace(self, name: str, prefix: Any, fn: JSFunction,
                          description: str | None, on_fired: JSFunction | None) -> None:
        if not self.loading:
            raise JSThrow(errors.keyspace_out_of_context(self.era))
        self._check_name("key space trigger", name)
        if name in self.keyspace_triggers:
            raise JSThrow(errors.NOTIFICATION_CONSUMER_EXISTS)
        trigger = KeyspaceTrigger(name, _prefix_bytes(prefix), fn, description, on_fired)
        old = self.previous.keyspace_triggers.get(name) if self.previous else None
        if old is not None:
            trigger.stats = old.stats  # an upgrade keeps the counters
        self.keyspace_triggers[name] = trigger

    def register_stream(self, name: str, prefix: Any, fn: JSFunction, window: float, trim: bool,
                        description: str | None) -> None:
        if not self.loading:
            raise JSThrow(errors.stream_out_of_context(self.era))
        self._check_name("stream trigger", name)
        if name in self.stream_triggers:
            raise JSThrow(errors.STREAM_REGISTRATION_EXISTS)
        prefix_bytes = _prefix_bytes(prefix)
        trigger = StreamTrigger(name, prefix_bytes, fn, int(window), bool(trim), description)
        old = self.previous.stream_triggers.get(name) if self.previous else None
        if old is not None:
            if old.prefix != prefix_bytes:
                raise JSThrow(errors.stream_prefix_changed(name, old.prefix, prefix_bytes))
            trigger.streams = old.streams  # an upgrade keeps positions and statistics
        self.stream_triggers[name] = trigger

    def register_remote(self, name: str, fn: JSFunction) -> None:
        if not self.loading:
            raise JSThrow(errors.remote_out_of_context(self.era))
        self._check_name("cluster function", name)
        if name in self.remote_functions:
            raise JSThrow(errors.remote_function_already_exists(name))
        self.remote_functions[name] = RemoteFunction(name, fn)

    def _check_name(self, kind: str, name: str) -> None:
        """tf only: names are `[A-Za-z0-9_]+` (RedisGears' v8_native_functions.rs)."""
        if self.era == "tf":
            problem = errors.unallowed_name(kind, name)
            if problem is not None:
                raise JSThrow(problem)


def _prefix_bytes(prefix: Any) -> bytes:
    """A trigger prefix: a string (as UTF-8) or an ArrayBuffer's bytes."""
    if isinstance(prefix, str):
        return prefix.encode("utf-8", "surrogatepass")
    return bytes(prefix)


__all__ = ["ALLOW_OOM", "NO_WRITES", "RAW_ARGUMENTS", "FunctionInfo", "KeyspaceTrigger",
           "Library", "RecordedError", "RemoteFunction", "StreamState", "StreamTrigger",
           "flag_names", "format_id"]
