"""The embedded store: one in-process fakeredis server that every session shares.

The package's parts: `socket` (each session's fakeredis connection, and every fakeredis internal
jshost relies on), `extra_commands` (Redis commands fakeredis lacks), `reply_fixes` (replies
typed and worded as Redis 7 does), `events` (keyspace events named as Redis 7 names them),
`expiry` (active expiry), `database` and `blocking` (blocked clients served on the event loop),
`values` and `datafile` (the data as `jshost.store.values`, and the file `--dir` keeps it in).
"""

from __future__ import annotations

import os
import platform
import time
import weakref
from collections.abc import Iterator

from fakeredis import FakeServer
from fakeredis._commands import SUPPORTED_COMMANDS
from fakeredis._core._database import Item
from fakeredis.model import ExpiringMembersSet, Hash, get_all_commands_info

from jshost.store.base import DataSnapshots, Store, StoreListener
from jshost.store.command_table import CommandTable
from jshost.store.embedded.blocking import BlockedClients
from jshost.store.embedded.database import TrackedDatabase
from jshost.store.embedded.datafile import DataFile
from jshost.store.embedded.events import KeyspaceEvents
from jshost.store.embedded.expiry import ActiveExpiry
from jshost.store.embedded.reply_fixes import REDIS_VERSION
from jshost.store.embedded.session import EmbeddedSession
from jshost.store.embedded.values import UnsupportedValue, from_stored, to_stored
from jshost.store.values import StoredValue


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
        self._started = time.time()

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

    def info_text(self, sections: set[bytes]) -> bytes:
        """A small INFO: the fields a client or the host is likely to look at."""
        dbs = {i: db for i, db in sorted(self.server.dbs.items()) if len(db)}
        keyspace = [
            f"db{i}:keys={len(db)},expires={sum(1 for k in db if db[k].expireat)},avg_ttl=0"
            for i, db in dbs.items()
        ]
        blocked = len(self.blocked.parked)
        body = {
            "server": [
                f"redis_version:{'.'.join(map(str, REDIS_VERSION))}",
                "redis_mode:standalone",
                f"os:{platform.system()} {platform.release()} {platform.machine()}",
                "arch_bits:64",
                f"process_id:{os.getpid()}",
                f"uptime_in_seconds:{int(time.time() - self._started)}",
                "executable:jshost-embedded",
            ],
            "clients": [
                f"connected_clients:{len(self.server.sockets)}",
                f"blocked_clients:{blocked}",
            ],
            "memory": ["used_memory:0", "maxmemory:0", "maxmemory_policy:noeviction"],
            "persistence": ["loading:0", "aof_enabled:0"],
            "replication": ["role:master", "connected_slaves:0"],
            "keyspace": keyspace,
        }
        wanted = sections or {b"default"}
        everything = bool(wanted & {b"all", b"everything", b"default"})
        parts = [
            f"# {name.capitalize()}\r\n" + "".join(line + "\r\n" for line in lines)
            for name, lines in body.items()
            if everything or name.encode() in wanted
        ]
        return "\r\n".join(parts).encode()
