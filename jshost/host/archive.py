"""Where libraries outlive a jshost process: archives of saved libraries.

- On a **real Redis** (`RedisArchive`) every library is kept in Redis itself, as a small Lua
  *function library* named `jshost_<hex of the name>` whose one function returns the library's
  code and settings. Redis functions survive `FLUSHALL`/`FLUSHDB` (as RedisGears libraries did),
  are saved in RDB/AOF and replicated, and every jshost in front of the same Redis sees them. A
  change is announced on the pub/sub channel `jshost:libraries` so the other instances reload
  it at once (`LibraryFollower`).
- With the **embedded store and `--dir`** (`DirectoryArchive`), libraries are written to
  `<dir>/libraries.json` on every change (the data goes to `<dir>/data.jsonl`:
  `jshost.store.embedded.datafile`). Without `--dir` everything is in memory only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from jshost.errors import Era, ReplyError
from jshost.files import write_atomically
from jshost.host.prologue import parse_prologue
from jshost.replies import ErrorReply, Push
from jshost.store import Session

log = logging.getLogger("jshost.persistence")

LIBRARY_PREFIX = "jshost_"
CHANGES_CHANNEL = b"jshost:libraries"


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
        return cls.from_fields(json.loads(text))

    @classmethod
    def from_fields(cls, fields: object) -> SavedLibrary:
        """A library from its stored fields, every one checked (stored libraries may have been
        written by someone else): `ValueError` says what is wrong."""
        if not isinstance(fields, dict):
            raise ValueError("not an object")
        unknown = set(fields) - _SAVED_FIELDS
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        name, era, code = fields.get("name"), fields.get("era"), fields.get("code")
        config_text, user = fields.get("config_text"), fields.get("user", "default")
        if not isinstance(name, str) or not name:
            raise ValueError("no library name")
        if era not in ("rg", "tf"):
            raise ValueError(f"unknown era {era!r}")
        if not isinstance(code, str):
            raise ValueError("no code")
        if config_text is not None and not isinstance(config_text, str):
            raise ValueError("the configuration is not text")
        if not isinstance(user, str):
            raise ValueError("the user is not text")
        try:
            declared = parse_prologue(code, era).name
        except ReplyError as exc:
            raise ValueError(f"its code does not load: {exc.text}") from None
        if declared != name:
            raise ValueError(f"it is kept as {name!r} but its code declares {declared!r}")
        return cls(name, era, code, config_text, user)


_SAVED_FIELDS = frozenset(("name", "era", "code", "config_text", "user"))


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
        """Every library kept in Redis; an entry that is not one jshost wrote is logged and
        skipped (anyone with access to the Redis can write functions named `jshost_...`)."""
        reply = self._check(self.session.call(
            [b"FUNCTION", b"LIST", b"LIBRARYNAME", LIBRARY_PREFIX.encode() + b"*", b"WITHCODE"]),
            "list libraries")
        return [lib for lib in map(_checked_entry, reply) if lib is not None]

    def load_one(self, name: str) -> SavedLibrary | None:
        """The saved library `name`, or None if it is not (or no longer, or not validly) kept."""
        target = redis_library_name(name)
        reply = self._check(self.session.call(
            [b"FUNCTION", b"LIST", b"LIBRARYNAME", target.encode(), b"WITHCODE"]),
            "list libraries")
        for lib in map(_checked_entry, reply):
            if lib is not None and redis_library_name(lib.name) == target:
                return lib
        return None


def _checked_entry(entry: Any) -> SavedLibrary | None:
    """The library in one FUNCTION LIST entry, or None (logged) when it is not valid."""
    try:
        fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2]))
        lua_name = bytes(fields.get(b"library_name") or b"").decode("utf-8", "replace")
    except (TypeError, ValueError):
        fields, lua_name = {}, "?"
    try:
        lib = _saved_from_function_entry(fields)
    except ValueError as exc:
        log.warning("skipping the stored library %s: not one jshost wrote (%s)", lua_name, exc)
        return None
    if redis_library_name(lib.name) != lua_name:
        log.warning("skipping the stored library %s: it holds library %r, which belongs in %s",
                    lua_name, lib.name, redis_library_name(lib.name))
        return None
    return lib


def _saved_from_function_entry(fields: dict[Any, Any]) -> SavedLibrary:
    code = fields.get(b"library_code") or b""
    match = _PAYLOAD.search(bytes(code))
    if match is None:
        raise ValueError("no payload")
    try:
        text = base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"bad payload: {exc}") from None
    return SavedLibrary.from_json(text)


class LibraryFollower:
    """Keeps this instance's libraries in step with the others in front of the same Redis:
    a message on `jshost:libraries` names a library that changed; it is loaded again (upgrade
    semantics: if the new code fails here, the old library keeps serving) or deleted.

    The subscription is a connection of its own, which the backend may drop (a restart,
    `CLIENT KILL TYPE pubsub`, a timeout). Then the follower subscribes again, retrying with a
    growing delay, and once subscribed reloads every library from Redis (`resync`): whatever
    changed meanwhile was announced to nobody here.

    A library this instance serves that Redis no longer holds is deleted here when the same
    server simply dropped the subscription (another instance deleted it meanwhile), but when
    the server restarted meanwhile (its `run_id` changed) and came back without it — its data
    lost, a new empty server on the same address — it is written back to Redis from this
    instance's copy (`copy_of`): the instance neither serves libraries the backend lacks nor
    loses them. Both cases are logged as warnings."""

    #: Seconds between attempts to subscribe again (the last one repeats).
    RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)

    def __init__(self, archive: RedisArchive, open_session: Callable[[], Session],
                 apply: Callable[[str, SavedLibrary | None], None],
                 loaded: Callable[[], Iterable[str]],
                 copy_of: Callable[[str], SavedLibrary | None] | None = None) -> None:
        self.archive = archive
        self.open_session = open_session
        self.apply = apply
        self.loaded = loaded  # the names of the libraries this instance has now
        self.copy_of = copy_of  # this instance's copy of a library, to write it back
        self.run_id: bytes | None = None  # the backend's, when last (re)subscribed
        self.subscriber: Session | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        """Subscribe, then catch up with what changed before the subscription took effect; if
        subscribing fails, keep trying in the background."""
        try:
            await self._subscribe()
        except Exception as exc:  # noqa: BLE001 - the reconnection loop takes over
            log.warning("could not subscribe to %s: %s", CHANGES_CHANNEL.decode(), exc)
            self._reconnect_later()
            return
        self.resync()

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
        if self.subscriber is not None:
            self.subscriber.close()

    def resync(self) -> None:
        """Apply what Redis holds now: every stored library; the ones this instance has that
        Redis no longer holds are written back if the server restarted meanwhile, else deleted
        here (see the class docstring)."""
        run_id = self._backend_run_id()
        restarted = self.run_id is not None and run_id is not None and run_id != self.run_id
        self.run_id = run_id
        stored = {lib.name: lib for lib in self.archive.load_all()}
        for name, lib in stored.items():
            self._apply(name, lib)
        missing = sorted(set(self.loaded()) - stored.keys())
        if not missing:
            return
        copies = [self.copy_of(name) for name in missing] if self.copy_of else []
        if restarted and copies and all(copy is not None for copy in copies):
            for copy in copies:
                self.archive.save(copy)  # type: ignore[arg-type]
            log.warning("the backend Redis restarted without libraries %s: jshost wrote them "
                        "back from its own copies", ", ".join(missing))
            return
        for name in missing:
            self._apply(name, None)
        log.warning("libraries %s were deleted in Redis while jshost was not following: "
                    "deleted here too", ", ".join(missing))

    def _backend_run_id(self) -> bytes | None:
        """The backend's run_id (it changes when the server restarts); None if unknown."""
        reply = self.archive.session.call([b"INFO", b"server"])
        if isinstance(reply, bytes):
            for line in bytes(reply).splitlines():
                if line.startswith(b"run_id:"):
                    return line[len(b"run_id:"):].strip()
        return None

    async def _subscribe(self) -> None:
        subscriber = self.open_session()
        subscriber.on_push = self._on_push
        reply = await subscriber.execute([b"SUBSCRIBE", CHANGES_CHANNEL])
        if isinstance(reply, ErrorReply) or subscriber.closed:
            subscriber.close()
            raise RuntimeError(str(reply) if isinstance(reply, ErrorReply) else "closed")
        self.subscriber = subscriber
        subscriber.when_closed(self._on_closed)

    def _on_closed(self) -> None:
        if not self._stopped:
            log.warning("lost the subscription to %s: subscribing again",
                        CHANGES_CHANNEL.decode())
            self._reconnect_later()

    def _reconnect_later(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        for attempt in itertools.count():
            await asyncio.sleep(self.RETRY_DELAYS[min(attempt, len(self.RETRY_DELAYS) - 1)])
            if self._stopped:
                return
            try:
                await self._subscribe()
                self.resync()
            except Exception as exc:  # noqa: BLE001 - tried again after a while
                log.warning("subscribing to %s again failed: %s", CHANGES_CHANNEL.decode(), exc)
                continue
            log.info("subscribed to %s again; libraries reloaded from Redis",
                     CHANGES_CHANNEL.decode())
            return

    def _on_push(self, push: Push) -> None:
        if len(push) == 3 and push[0] == b"message" and push[1] == CHANGES_CHANNEL:
            name = bytes(push[2]).decode("utf-8", "replace")
            try:
                self._apply(name, self.archive.load_one(name))
            except Exception:  # one bad update must not stop following the others
                log.exception("could not follow a change of library %s", name)

    def _apply(self, name: str, lib: SavedLibrary | None) -> None:
        try:
            self.apply(name, lib)
        except Exception:  # one library must not stop the others
            log.exception("could not follow a change of library %s", name)


# --- embedded store with --dir ------------------------------------------------------------------


class DirectoryArchive:
    """Libraries in `<dir>/libraries.json`, rewritten atomically on every change."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "libraries.json"

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        libs: dict[str, dict[str, Any]] = json.loads(self.path.read_text("utf-8"))
        return libs

    def _write(self, libs: dict[str, dict[str, Any]]) -> None:
        write_atomically(self.path, json.dumps(libs, indent=1).encode("utf-8"))

    def save(self, lib: SavedLibrary) -> None:
        libs = self._read()
        libs[lib.name] = asdict(lib)
        self._write(libs)

    def remove(self, name: str) -> None:
        libs = self._read()
        if libs.pop(name, None) is not None:
            self._write(libs)

    def load_all(self) -> list[SavedLibrary]:
        """Every library in the file; an entry that is not valid is logged and skipped."""
        libs = []
        for name, fields in self._read().items():
            try:
                libs.append(SavedLibrary.from_fields(fields))
            except ValueError as exc:
                log.warning("skipping library %r of %s: %s", name, self.path, exc)
        return libs
