"""The embedded store: one in-process fakeredis server that every session shares.

The package's parts: `socket` (each session's fakeredis connection, and every fakeredis internal
jshost relies on), `extra_commands` (Redis commands fakeredis lacks), `reply_fixes` (replies
typed and worded as Redis 7 does), `events` (keyspace events named as Redis 7 names them),
`expiry` (active expiry), `database` and `blocking` (blocked clients served on the event loop),
`values` and `datafile` (the data as `jshost.store.values`, and the file `--dir` keeps it in).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fakeredis import FakeServer
from fakeredis._commands import SUPPORTED_COMMANDS
from fakeredis._core._database import Item
from fakeredis.model import ExpiringMembersSet, Hash, get_all_commands_info

from jshost.replies import Push
from jshost.settings import parse_size
from jshost.store.base import DataSnapshots, Store, StoreListener
from jshost.store.command_table import CommandTable
from jshost.store.embedded.blocking import BlockedClients
from jshost.store.embedded.database import TrackedDatabase
from jshost.store.embedded.datafile import DataFile
from jshost.store.embedded.events import KeyspaceEvents
from jshost.store.embedded.expiry import ActiveExpiry
from jshost.store.embedded.extra_commands import CONFIG_DEFAULTS
from jshost.store.embedded.monitor import CommandMonitor, Histogram
from jshost.store.embedded.memory import DatasetSize
from jshost.store.embedded.reply_fixes import REDIS_VERSION
from jshost.store.embedded.server_commands import rss_bytes
from jshost.store.embedded.session import EmbeddedSession
from jshost.store.embedded.tracking import INVALIDATE, TrackingTable
from jshost.store.embedded.values import UnsupportedValue, from_stored, to_stored
from jshost.store.values import StoredValue

if TYPE_CHECKING:
    from jshost.store.embedded.database import Waiter
    from jshost.store.embedded.socket import StoreSocket


class EmbeddedStore(Store):
    """An in-process Redis 7 (fakeredis) shared by all sessions, driven from one event loop.

    Its listener (`set_listener`) hears every keyspace event (`jshost.store.embedded.events`):
    synchronously, in Redis' order, after the command that caused it ran and before that
    command's reply is returned.
    """

    in_process = True
    kind = "embedded"

    def __init__(self, *, config: dict[bytes, bytes] | None = None) -> None:
        self.server = FakeServer(version=REDIS_VERSION, server_type="redis", config=config)
        # Every database is one of ours, so writes tell us which waited-on keys became ready.
        # (a defaultdict, annotated as a plain dict by fakeredis)
        self.server.dbs.default_factory = (  # type: ignore[attr-defined]
            lambda: TrackedDatabase(self.server.lock, self)
        )
        self.events = KeyspaceEvents(self.server)
        self.expiry = ActiveExpiry(self.server, self.events)
        self.blocked = BlockedClients()
        self.sessions: weakref.WeakSet[EmbeddedSession] = weakref.WeakSet()
        self._table: CommandTable | None = None
        self.started = time.time()
        # SLOWLOG, LATENCY (`monitor`), with their settings parsed.
        self.monitor = CommandMonitor()
        self._monitor_config = self._parse_monitor_config()
        self.touching = True  # False while a CLIENT NO-TOUCH client's command runs
        # CLIENT TRACKING (`tracking`): who tracks what, the socket whose command runs now
        # (NOLOOP), and FLUSHDB/FLUSHALL in progress (one null push for it).
        self.tracking = TrackingTable()
        self.running: StoreSocket | None = None
        self.flushing = False
        self.by_id: weakref.WeakValueDictionary[int, EmbeddedSession] = (
            weakref.WeakValueDictionary()
        )
        self.started_rss = rss_bytes()
        self.expired_keys = 0  # INFO's, since the start or CONFIG RESETSTAT
        self.dataset = DatasetSize(self.server)
        # REPLICAOF's target (host, port), or None on a primary: jshost records the role and
        # refuses writes as a replica does, but never connects anywhere.
        self.replica_of: tuple[bytes, int] | None = None
        self._maxmemory = 0
        self.config_changed()

    def open_session(self) -> EmbeddedSession:
        return EmbeddedSession(self)

    def command_info(self) -> CommandTable:
        if self._table is None:
            self._table = self._build_table()
        return self._table

    async def aclose(self) -> None:
        for session in list(self.sessions):
            session.close()
        self.expiry.cancel()

    def set_listener(self, listener: StoreListener | None) -> None:
        """Who hears keyspace events; with nobody (and no subscriber to them), the store does
        not work them out at all."""
        self.events.listener = listener

    @property
    def listener(self) -> StoreListener | None:
        return self.events.listener

    def serve_blocked(self) -> None:
        """Retry the commands of clients blocked on keys written since the last call, oldest
        first, as Redis does after each command (handleClientsBlockedOnKeys)."""
        self.blocked.serve()

    @property
    def snapshots(self) -> DataSnapshots:
        return DataFile(self)

    # -- replica role and maxmemory (jshost is the whole server here) ------------------------------

    def is_replica(self) -> bool:
        return self.replica_of is not None

    @property
    def maxmemory(self) -> int:
        """`maxmemory` in bytes (0: no limit), as CONFIG SET left it (`x_config_set`)."""
        return self._maxmemory

    def config_changed(self) -> None:
        """CONFIG SET ran: re-read the settings the store acts on (the slow log's and latency
        monitor's; `maxmemory`, asked before every write)."""
        self._monitor_config = self._parse_monitor_config()
        raw = self.server.config.get(b"maxmemory", b"0")
        try:
            self._maxmemory = parse_size(raw.decode("ascii", "replace"))
        except ValueError:  # (CONFIG SET refuses such values: `x_config_set`)
            self._maxmemory = 0

    def used_memory(self) -> int:
        """The estimate of used memory INFO shows and `is_oom` compares (`DatasetSize`)."""
        return self.dataset.used_memory()

    def is_oom(self) -> bool:
        limit = self._maxmemory
        return bool(limit) and self.dataset.used_memory() > limit

    # -- the data, as `jshost.store.values` (the data file) ----------------------------------------

    def export_values(self) -> Iterator[tuple[int, bytes, StoredValue | str, float | None]]:
        """Every live key of every database: (db, key, value, expiry time or None). A value of
        a type that has no `StoredValue` (a time series, say) is its type's name. The expiry
        is unix time in seconds, exactly as stored (PEXPIRETIME shows it in ms)."""
        now = time.time()
        for index, db in sorted(self.server.dbs.items()):
            for key, item in list(db._dict.items()):
                if item.expireat is not None and item.expireat <= now:
                    continue
                try:
                    value: StoredValue | str = to_stored(item.value)
                except UnsupportedValue as exc:
                    value = exc.kind
                yield index, key, value, item.expireat

    def import_value(self, db: int, key: bytes, value: StoredValue, expiry: float | None) -> None:
        """Store `value` at `key` (replacing it), before any client is served; `expiry` as
        `export_values` gives it. An expiry already past stores nothing."""
        if expiry is not None and expiry <= time.time():
            return
        self.dataset.reset()
        stored = from_stored(value)
        if isinstance(stored, (Hash, ExpiringMembersSet)) and not len(stored):
            return  # every member's own time to live has passed meanwhile
        item = Item(stored)
        item.expireat = expiry  # type: ignore[assignment]  # fakeredis annotates it None only
        self.server.dbs[db][key] = item
        self.expiry.dirty = True

    def _build_table(self) -> CommandTable:
        """Redis 7.2's table, topped up with what fakeredis adds (module commands and others)."""
        supported = {
            name.replace(" ", "|")
            for name, sig in SUPPORTED_COMMANDS.items()
            if "redis" in sig.server_types
        }
        known = get_all_commands_info()  # fakeredis' own COMMAND data (for the commands it adds)
        extra = CommandTable.from_command_reply(
            (info for name, info in known.items() if name.decode().replace(" ", "|") in supported),
            add_host_commands=False,
        )
        return CommandTable.bundled().merged(extra)

    # -- what the server commands (`server_commands`) and INFO read -------------------------------

    @property
    def parked(self) -> dict[EmbeddedSession, Waiter]:
        """The sessions waiting in a blocking command."""
        return self.blocked.parked

    def version_text(self) -> str:
        return ".".join(map(str, REDIS_VERSION))

    def config_value(self, name: bytes) -> bytes:
        """A setting's value (CONFIG SET keeps names lower-case), or its default."""
        return self.server.config.get(name, CONFIG_DEFAULTS.get(name, b""))

    def _parse_monitor_config(self) -> tuple[int, int, int, bool]:
        value = self.config_value
        return (int(value(b"slowlog-log-slower-than")), int(value(b"slowlog-max-len")),
                int(value(b"latency-monitor-threshold")),
                value(b"latency-tracking").lower() == b"yes")

    def record(self, args: list[bytes], micros: int, sock: StoreSocket) -> None:
        """A command has run in `micros` microseconds: the histograms, the slow log and the
        latency monitor (the common case, a fast command, costs a histogram count)."""
        slower_than, max_len, latency_ms, histograms = self._monitor_config
        if histograms:  # (inline: this runs for every command)
            histogram = self.monitor.histograms.get(args[0].lower())
            if histogram is None:
                histogram = self.monitor.histograms[args[0].lower()] = Histogram()
            histogram.calls += 1
            histogram.usec += micros
            histogram.buckets[(micros - 1).bit_length() if micros > 1 else 0] += 1
        if not (0 <= slower_than <= micros or 0 < latency_ms * 1000 <= micros):
            return
        fast = False
        if latency_ms > 0 and micros >= latency_ms * 1000:
            info = self.command_info().lookup(args)
            fast = info is not None and "fast" in info.flags
        name = sock._client_info.get("name", "") or ""
        self.monitor.record_slow(
            args, micros, slower_than=slower_than, max_len=max_len,
            latency_threshold_ms=latency_ms, fast=fast, client=(sock._session.peer, name.encode()),
        )

    # -- expiry and CLIENT TRACKING ------------------------------------------------------------------

    def key_expired(self, db: TrackedDatabase, key: bytes) -> None:
        """`db` dropped `key` because it expired: count it, tell the clients tracking it, and
        report the `expired` event."""
        self.expired_keys += 1
        if self.tracking.clients:
            self.tracked_key_changed(key, expired=True)
        self.events.key_expired(db, key)

    def tracked_key_changed(self, key: bytes, expired: bool = False) -> None:
        """Tell the clients tracking `key` (a FLUSHDB tells them all at its end instead)."""
        if self.flushing:
            return
        running = self.running
        writer = None if expired or running is None else int(running._client_info["id"])
        for client_id, keys in self.tracking.modified(key, writer).items():
            self.invalidate(client_id, keys)

    def invalidate(self, client_id: int, keys: list[bytes] | None) -> None:
        """Push an invalidation (`keys`, or None for everything) to a tracking client."""
        session = self.by_id.get(client_id)
        if session is None or session.closed:
            self.tracking.disable(client_id)
            return
        push = Push([INVALIDATE, keys])
        if session.on_push is None:
            session.pushes.append(push)
        else:
            session.on_push(push)
