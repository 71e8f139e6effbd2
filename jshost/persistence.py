"""What outlives a jshost process: its libraries and, for the embedded store, its data.

- On a **real Redis** (`RedisArchive`) every library is kept in Redis itself, as a small Lua
  *function library* named `jshost_<hex of the name>` whose one function returns the library's
  code and settings. Redis functions survive `FLUSHALL`/`FLUSHDB` (as RedisGears libraries did),
  are saved in RDB/AOF and replicated, and every jshost in front of the same Redis sees them. A
  change is announced on the pub/sub channel `jshost:libraries` so the other instances reload
  it at once (`LibraryFollower`).
- With the **embedded store and `--dir`** (`DirectoryArchive`), libraries are written to
  `<dir>/libraries.json` on every change, and the data to `<dir>/data.jsonl` on `SAVE` and on a
  graceful shutdown (fakeredis' own `SAVE` writes nothing). Without `--dir` everything is in
  memory only.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jshost.errors import Era
from jshost.replies import ErrorReply, Push
from jshost.store import Session, Store

if TYPE_CHECKING:
    from jshost.host import Host

log = logging.getLogger("jshost.persistence")

LIBRARY_PREFIX = "jshost_"
CHANGES_CHANNEL = b"jshost:libraries"
DATABASES = 16


@dataclass(frozen=True)
class SavedLibrary:
    """Everything needed to load a library again."""

    name: str
    era: Era
    code: str
    config_text: str | None
    user: str = "default"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SavedLibrary:
        return cls(**json.loads(text))


class LibraryArchive(Protocol):
    def save(self, lib: SavedLibrary) -> None: ...
    def remove(self, name: str) -> None: ...
    def load_all(self) -> list[SavedLibrary]: ...


# --- real Redis -------------------------------------------------------------------------------


def redis_library_name(name: str) -> str:
    """The Lua library holding jshost library `name` (hex keeps any name a valid identifier)."""
    return LIBRARY_PREFIX + name.encode("utf-8").hex()


def _lua_library(lib: SavedLibrary) -> bytes:
    lua_name = redis_library_name(lib.name)
    payload = base64.b64encode(lib.to_json().encode("utf-8")).decode("ascii")
    return (
        f"#!lua name={lua_name}\n"
        f"-- jshost keeps its RedisGears library {json.dumps(lib.name)} here; do not edit.\n"
        f"local payload = '{payload}'\n"
        f"redis.register_function{{function_name='{lua_name}', "
        "callback=function() return payload end, flags={'no-writes'}}\n"
    ).encode()


_PAYLOAD = re.compile(rb"local payload = '([A-Za-z0-9+/=]*)'")


class RedisArchive:
    """Libraries kept as Redis functions (see the module docstring)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _check(self, reply: Any, what: str) -> Any:
        if isinstance(reply, ErrorReply):
            raise RuntimeError(f"could not {what} in Redis: {reply}")
        return reply

    def save(self, lib: SavedLibrary) -> None:
        self._check(self.session.call([b"FUNCTION", b"LOAD", b"REPLACE", _lua_library(lib)]),
                    f"save library {lib.name}")
        self.session.call([b"PUBLISH", CHANGES_CHANNEL, lib.name.encode("utf-8")])

    def remove(self, name: str) -> None:
        reply = self.session.call([b"FUNCTION", b"DELETE", redis_library_name(name).encode()])
        if isinstance(reply, ErrorReply) and "not exist" not in str(reply).lower():
            self._check(reply, f"delete library {name}")
        self.session.call([b"PUBLISH", CHANGES_CHANNEL, name.encode("utf-8")])

    def load_all(self) -> list[SavedLibrary]:
        reply = self._check(self.session.call(
            [b"FUNCTION", b"LIST", b"LIBRARYNAME", LIBRARY_PREFIX.encode() + b"*", b"WITHCODE"]),
            "list libraries")
        return [lib for lib in map(_saved_from_function_entry, reply) if lib is not None]

    def load_one(self, name: str) -> SavedLibrary | None:
        """The saved library `name`, or None if it is not (or no longer) kept."""
        target = redis_library_name(name).encode()
        reply = self._check(self.session.call(
            [b"FUNCTION", b"LIST", b"LIBRARYNAME", target, b"WITHCODE"]), "list libraries")
        for lib in map(_saved_from_function_entry, reply):
            if lib is not None and redis_library_name(lib.name).encode() == target:
                return lib
        return None


def _saved_from_function_entry(entry: Any) -> SavedLibrary | None:
    fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2]))
    code = fields.get(b"library_code") or b""
    match = _PAYLOAD.search(bytes(code))
    if match is None:
        return None
    return SavedLibrary.from_json(base64.b64decode(match.group(1)).decode("utf-8"))


class LibraryFollower:
    """Keeps this instance's libraries in step with the others in front of the same Redis:
    a message on `jshost:libraries` names a library that changed; it is loaded again (upgrade
    semantics: if the new code fails here, the old library keeps serving) or deleted."""

    def __init__(self, archive: RedisArchive, subscriber: Session,
                 apply: Callable[[str, SavedLibrary | None], None]) -> None:
        self.archive = archive
        self.subscriber = subscriber
        self.apply = apply

    async def start(self) -> None:
        self.subscriber.on_push = self._on_push
        await self.subscriber.execute([b"SUBSCRIBE", CHANGES_CHANNEL])

    def _on_push(self, push: Push) -> None:
        if len(push) == 3 and push[0] == b"message" and push[1] == CHANGES_CHANNEL:
            name = bytes(push[2]).decode("utf-8", "replace")
            try:
                self.apply(name, self.archive.load_one(name))
            except Exception:  # one bad update must not stop following the others
                log.exception("could not follow a change of library %s", name)


# --- embedded store with --dir ------------------------------------------------------------------


class DirectoryArchive:
    """Libraries in `<dir>/libraries.json`, rewritten atomically on every change."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "libraries.json"

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text("utf-8"))

    def _write(self, libs: dict[str, dict[str, Any]]) -> None:
        _atomic_write(self.path, json.dumps(libs, indent=1).encode("utf-8"))

    def save(self, lib: SavedLibrary) -> None:
        libs = self._read()
        libs[lib.name] = asdict(lib)
        self._write(libs)

    def remove(self, name: str) -> None:
        libs = self._read()
        if libs.pop(name, None) is not None:
            self._write(libs)

    def load_all(self) -> list[SavedLibrary]:
        return [SavedLibrary(**fields) for fields in self._read().values()]


def save_data(store: Store, directory: Path) -> int:
    """Snapshot every key of every database (DUMP + PTTL) to `<dir>/data.jsonl`; returns the
    number of keys written."""
    session = store.open_session()
    lines: list[bytes] = []
    try:
        for db in range(DATABASES):
            session.call([b"SELECT", str(db).encode()])
            for key in _scan(session):
                dump = session.call([b"DUMP", key])
                if not isinstance(dump, bytes):
                    continue  # expired meanwhile
                ttl = session.call([b"PTTL", key])
                lines.append(json.dumps({
                    "db": db, "key": base64.b64encode(key).decode(),
                    "dump": base64.b64encode(dump).decode(),
                    "pttl": ttl if isinstance(ttl, int) and ttl > 0 else 0,
                }).encode())
    finally:
        session.close()
    _atomic_write(directory / "data.jsonl", b"\n".join(lines) + b"\n" if lines else b"")
    return len(lines)


def load_data(store: Store, directory: Path) -> int:
    """Restore `<dir>/data.jsonl` into the store; returns the number of keys restored."""
    path = directory / "data.jsonl"
    if not path.exists():
        return 0
    session = store.open_session()
    count = 0
    try:
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            session.call([b"SELECT", str(entry["db"]).encode()])
            reply = session.call([b"RESTORE", base64.b64decode(entry["key"]),
                                  str(entry["pttl"]).encode(), base64.b64decode(entry["dump"]),
                                  b"REPLACE"])
            if isinstance(reply, ErrorReply):
                raise RuntimeError(f"could not restore a key from {path}: {reply}")
            count += 1
    finally:
        session.close()
    return count


def _scan(session: Session) -> Iterator[bytes]:
    cursor = b"0"
    while True:
        cursor, keys = session.call([b"SCAN", cursor, b"COUNT", b"1000"])
        yield from keys
        if cursor == b"0":
            return


def _atomic_write(path: Path, data: bytes) -> None:
    """Write a whole file or nothing (a crash mid-write leaves the old file)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --- the server's persistence, by store ---------------------------------------------------------


class Persistence:
    """Sets up what a server keeps across restarts, for its kind of store:

    - remote store: libraries in Redis (`RedisArchive`), followed across instances;
    - embedded store with a directory: libraries and data in it (`DirectoryArchive`,
      `save_data` on `SAVE` and at shutdown);
    - embedded store without one: nothing (memory only).
    """

    def __init__(self, host: Host, directory: Path | None = None) -> None:
        self.host = host
        self.directory = directory
        self.follower: LibraryFollower | None = None

    @property
    def saves_data(self) -> bool:
        """Whether `SAVE` writes the data (embedded store with a directory)."""
        return self.directory is not None

    async def start(self) -> None:
        """Load what was kept and start keeping changes."""
        from jshost.store import RemoteStore

        host = self.host
        if isinstance(host.store, RemoteStore):
            archive = RedisArchive(host.session(0))
            host.archive = archive
            loaded = host.restore(archive.load_all())
            self.follower = LibraryFollower(archive, host.store.open_session(), host.follow)
            await self.follower.start()
            log.info("%d libraries loaded from Redis; following changes on %s", loaded,
                     CHANGES_CHANNEL.decode())
        elif self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            keys = load_data(host.store, self.directory)
            host.archive = DirectoryArchive(self.directory)
            loaded = host.restore(host.archive.load_all())
            log.info("%d keys and %d libraries loaded from %s", keys, loaded, self.directory)

    def save(self) -> int:
        """Snapshot the data (embedded store with a directory); returns the keys written."""
        if self.directory is None:
            return 0
        count = save_data(self.host.store, self.directory)
        log.info("saved %d keys to %s", count, self.directory / "data.jsonl")
        return count

    async def stop(self) -> None:
        """At a graceful shutdown: a last snapshot."""
        if self.follower is not None:
            self.follower.subscriber.close()
        self.save()
