"""pytest plugin: test RedisGears 2 libraries in-process, with no server.

Installed with the package (entry point `pytest11`: `jshost = "jshost.pytest_plugin"`), so any
test suite in an environment with jshost gets these fixtures:

* `jshost` (`JSHost`): a host on a fresh embedded store, for ordinary tests::

      def test_counter(jshost):
          lib = jshost.load_file("lib.js")            # relative to this test file
          assert lib.fcall("counter", keys=["c"]) == 1
          assert lib.fcall_async("slow_counter", keys=["c"]) == 2
          assert jshost.store.execute("GET", "c") == b"2"

* `ajshost` (`AsyncJSHost`): the same for `async def` tests (pytest-asyncio or any other runner):
  `await lib.fcall(...)`, `await lib.fcall_async(...)`, `await ajshost.store.execute(...)`.
* `jshost_server` (`JSHostServer`): a real `jshost serve` process on a free port, for tests
  that go through a Redis client: `jshost_server.client()` is a redis-py client.

With `pytest --jshost-redis-url redis://host:port/db` all three run against that real Redis
instead of an embedded store (the data is shared between tests: use your own keys).

Replies are the host's typed values (`jshost.replies`): bulk strings are `bytes`, integers `int`,
maps `dict`, and so on. A failed load or call raises `JSHostError` (a `ReplyError`): `.text` is
the exact error reply, and the message shows it with the JS stack, when there is one
(`error-verbosity` 2), one frame per line and with the library's real file path.

Host settings per test with a marker, or for every test with an ini option::

      @pytest.mark.jshost_settings(error_verbosity=2)      # or ({"error-verbosity": "2"})

      [pytest]
      jshost_settings =
          error-verbosity=2
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pytest

from jshost.errors import Era, PluginErrors, ReplyError

if TYPE_CHECKING:
    from jshost.host import Host
    from jshost.replies import Reply, StoreReply
    from jshost.settings import Settings
    from jshost.store import Session
    from jshost.sync import SyncHost

__all__ = ["AsyncJSHost", "AsyncLibraryHandle", "JSHost", "JSHostError", "LibraryHandle"]

Word = str | bytes | int
"""A command word, key or argument: str is UTF-8 encoded, int is written in decimal."""

Config = Mapping[str, Any] | str | None
"""A library's CONFIG: a mapping (sent as JSON), the JSON text itself, or None for none."""

_FRAME_SEPARATOR = "|    at "  # how an error-verbosity 2 stack arrives in a reply
_PRELUDE_FRAME = "<jshost prelude>"


# --- errors -------------------------------------------------------------------------------------


class JSHostError(ReplyError):
    """A library load or a function call failed.

    `text` is the error reply exactly as a client would get it. `str()` adds what was being
    done and lays out a JS stack (error-verbosity 2) one frame per line, with the library's file
    path instead of its `<name>.js`, so pytest's failure output points at the JS source.
    """

    def __init__(self, text: str, action: str, library: str | None = None,
                 path: Path | None = None) -> None:
        super().__init__(text)
        self.action = action
        self.library = library
        self.path = path

    def __str__(self) -> str:
        head, *frames = self.text.split(_FRAME_SEPARATOR)
        lines = [f"{self.action}: {head}"]
        source = f"({self.library}.js:" if self.library else None
        for frame in frames:
            if _PRELUDE_FRAME in frame:
                continue  # the host's own glue: noise for the library author
            if source and self.path is not None:
                frame = frame.replace(source, f"({_shown_path(self.path)}:")
            lines.append(f"    at {frame}")
        return "\n".join(lines)


def _shown_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it (shorter output)."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


def _prologue_name(code: str) -> str | None:
    """The `name=` of a library's prologue, for stack frames of a load that failed."""
    match = re.search(r"(?:^|\s)name=(\S+)", code.partition("\n")[0])
    return match.group(1) if match else None


# --- shared pieces -------------------------------------------------------------------------------


def _word(value: Word) -> bytes | str:
    if isinstance(value, bool):  # bool is an int: refuse the likely mistake
        raise TypeError(PluginErrors.BOOL_AS_WORD)
    return str(value) if isinstance(value, int) else value


def _words(values: Sequence[Word] | Word) -> list[bytes | str]:
    if isinstance(values, (str, bytes, int)):  # a lone key or argument: a common slip
        values = [values]
    return [_word(v) for v in values]


def _config_text(config: Config) -> str | None:
    if config is None or isinstance(config, str):
        return config
    return json.dumps(config)


def _call_action(era: Era, asynchronous: bool, library: str, function: str) -> str:
    if era == "tf":
        return f"{'TFCALLASYNC' if asynchronous else 'TFCALL'} {library}.{function}"
    return f"{'RG.FCALLASYNC' if asynchronous else 'RG.FCALL'} {library} {function}"


def _load_action(era: Era, path: Path | None) -> str:
    command = "TFUNCTION LOAD" if era == "tf" else "RG.FUNCTION LOAD"
    return f"{command} {_shown_path(path)}" if path is not None else command


class _LibraryBase:
    """What both library handles know: the library's name, era and source file."""

    def __init__(self, host: Any, name: str, era: Era, path: Path | None) -> None:
        self._host = host
        self.name = name
        self.era: Era = era
        self.path = path

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"<{type(self).__name__} {self.name!r} ({self.era}){where}>"

    def _error(self, exc: ReplyError, function: str, asynchronous: bool) -> JSHostError:
        action = _call_action(self.era, asynchronous, self.name, function)
        return JSHostError(exc.text, action, self.name, self.path)

    def list(self, verbosity: int = 0, with_code: bool = False) -> dict[str, Any]:
        """This library's map of the LIST reply (in its era's shape)."""
        entry: dict[str, Any]
        [entry] = self._host.list(era=self.era, with_code=with_code, verbosity=verbosity,
                                  library=self.name)
        return entry


H = TypeVar("H", bound=_LibraryBase)


class _HostBase(Generic[H]):
    """Loading and listing, shared by the sync and the async fixture (`Host.load` is sync)."""

    _handle_class: type[H]

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir

    @property
    def _core(self) -> Host:
        raise NotImplementedError

    @property
    def settings(self) -> Settings:
        """The host's settings, read with `settings["error-verbosity"]`."""
        return self._core.settings

    def config_set(self, name: str, value: str | int) -> None:
        """Change a mutable setting, as `CONFIG SET redisgears_2.<name> <value>` would."""
        full = name if name.lower().startswith("redisgears_2.") else f"redisgears_2.{name}"
        self._core.settings.set(full, str(value))

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """`path`, relative to the test file's directory unless absolute."""
        return (self.base_dir / path).resolve()

    def load(self, code: str, era: Era = "rg", config: Config = None, replace: bool = False,
             *, path: Path | None = None) -> H:
        """Load library code (`RG.FUNCTION LOAD`, or `TFUNCTION LOAD` with era="tf"); returns a
        handle to call its functions. `replace` is UPGRADE / REPLACE. Raises `JSHostError`."""
        __tracebackhide__ = True
        self._before_load()
        try:
            name = self._core.load(code, _config_text(config), replace, era)
        except ReplyError as exc:
            raise JSHostError(exc.text, _load_action(era, path), _prologue_name(code),
                              path) from None
        self._after_load()
        return self._handle_class(self, name, era, path)

    def load_file(self, path: str | os.PathLike[str], era: Era = "rg", config: Config = None,
                  replace: bool = False) -> H:
        """Load a library from a file, relative to the test file's directory."""
        __tracebackhide__ = True
        file = self.resolve(path)
        return self.load(file.read_text(encoding="utf-8"), era, config, replace, path=file)

    def library(self, name: str, era: Era = "rg") -> H:
        """A handle to a library already loaded (e.g. by another handle's code)."""
        __tracebackhide__ = True
        try:
            self._core.get_library(name)
        except ReplyError as exc:  # "Unknown library <name>"
            raise JSHostError(exc.text, f"library {name!r}") from None
        return self._handle_class(self, name, era, None)

    def delete(self, name: str) -> None:
        """`RG.FUNCTION DEL <name>`."""
        __tracebackhide__ = True
        try:
            self._core.delete(name)
        except ReplyError as exc:  # "library does not exists"
            raise JSHostError(exc.text, f"RG.FUNCTION DEL {name}") from None

    def list(self, era: Era = "rg", with_code: bool = False, verbosity: int = 0,
             library: str | None = None) -> list[dict[str, Any]]:
        """The LIST reply as a list of maps (rg or tf shape)."""
        from jshost.host.listing import list_libraries
        from jshost.host.requests import ListArgs

        return list_libraries(self._core, era, ListArgs(with_code, verbosity, library))

    def _before_load(self) -> None:
        """Hook: refuse to start where the fixture cannot work."""

    def _after_load(self) -> None:
        """Hook: let work queued by the load run (the sync host has its own loop)."""


# --- the sync fixture ----------------------------------------------------------------------------


class LibraryHandle(_LibraryBase):
    """A loaded library, for `jshost` tests."""

    _host: JSHost

    def fcall(self, function: str, keys: Sequence[Word] = (), args: Sequence[Word] = ()) -> Reply:
        """`RG.FCALL` (or `TFCALL`): the reply. A pending promise is an error, as in Redis."""
        __tracebackhide__ = True
        return self._call(function, keys, args, asynchronous=False)

    def fcall_async(self, function: str, keys: Sequence[Word] = (),
                    args: Sequence[Word] = ()) -> Reply:
        """`RG.FCALLASYNC` (or `TFCALLASYNC`): the reply, once the function's promise settles."""
        __tracebackhide__ = True
        return self._call(function, keys, args, asynchronous=True)

    def _call(self, function: str, keys: Sequence[Word], args: Sequence[Word],
              asynchronous: bool) -> Reply:
        __tracebackhide__ = True
        sync = self._host.sync_host
        call = sync.fcall_async if asynchronous else sync.fcall
        _check_no_running_loop()
        try:
            return call(self.name, function, _words(keys), _words(args), era=self.era)
        except ReplyError as exc:
            raise self._error(exc, function, asynchronous) from None

    def delete(self) -> None:
        """Delete this library."""
        self._host.delete(self.name)


class SyncStore:
    """Plain store commands for `jshost` tests: `execute("GET", "c") == b"2"`."""

    def __init__(self, sync_host: SyncHost) -> None:
        self._sync_host = sync_host

    def execute(self, *args: Word) -> StoreReply:
        """Run one command on database 0; an error reply raises `JSHostError`."""
        __tracebackhide__ = True
        _check_no_running_loop()
        reply = self._sync_host.execute(*_words(args))
        _raise_error_reply(reply, args)
        return reply


class JSHost(_HostBase[LibraryHandle]):
    """The `jshost` fixture: an in-process host on a fresh embedded store."""

    _handle_class = LibraryHandle

    def __init__(self, sync_host: SyncHost, base_dir: Path) -> None:
        super().__init__(base_dir)
        self.sync_host = sync_host
        self.store = SyncStore(sync_host)

    @property
    def _core(self) -> Host:
        return self.sync_host.host

    def _before_load(self) -> None:
        _check_no_running_loop()

    def _after_load(self) -> None:
        self.sync_host.run_pending()

    def close(self) -> None:
        self.sync_host.close()


# --- the async fixture ---------------------------------------------------------------------------


class AsyncLibraryHandle(_LibraryBase):
    """A loaded library, for `ajshost` (async) tests."""

    _host: AsyncJSHost

    async def fcall(self, function: str, keys: Sequence[Word] = (),
                    args: Sequence[Word] = ()) -> Reply:
        """`RG.FCALL` (or `TFCALL`): the reply. A pending promise is an error, as in Redis."""
        __tracebackhide__ = True
        return await self._call(function, keys, args, asynchronous=False)

    async def fcall_async(self, function: str, keys: Sequence[Word] = (),
                          args: Sequence[Word] = ()) -> Reply:
        """`RG.FCALLASYNC` (or `TFCALLASYNC`): the reply, once the function's promise settles.
        Other tasks of the test (e.g. `ajshost.store.execute`) run while it waits."""
        __tracebackhide__ = True
        return await self._call(function, keys, args, asynchronous=True)

    async def _call(self, function: str, keys: Sequence[Word], args: Sequence[Word],
                    asynchronous: bool) -> Reply:
        __tracebackhide__ = True
        host = self._host.host
        call = host.fcall_async if asynchronous else host.fcall
        try:
            return await call(self.name, function, _words(keys), _words(args), era=self.era)
        except ReplyError as exc:
            raise self._error(exc, function, asynchronous) from None

    def delete(self) -> None:
        """Delete this library."""
        self._host.delete(self.name)


class AsyncStore:
    """Plain store commands for `ajshost` tests: `await execute("GET", "c") == b"2"`."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self._session: Session | None = None

    async def execute(self, *args: Word) -> StoreReply:
        """Run one command on database 0, as a client separate from the libraries' own; an
        error reply raises `JSHostError`. A blocking command (BLPOP) waits without blocking the
        loop, so it can run alongside a function call."""
        __tracebackhide__ = True
        if self._session is None:
            self._session = self._host.store.open_session()
        words = [w.encode() if isinstance(w, str) else w for w in _words(args)]
        reply = await self._session.execute(words)
        _raise_error_reply(reply, args)
        return reply

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


class AsyncJSHost(_HostBase[AsyncLibraryHandle]):
    """The `ajshost` fixture: like `jshost`, with awaitable calls, on the test's event loop."""

    _handle_class = AsyncLibraryHandle

    def __init__(self, host: Host, base_dir: Path) -> None:
        super().__init__(base_dir)
        self.host = host
        self.store = AsyncStore(host)

    @property
    def _core(self) -> Host:
        return self.host

    def close(self) -> None:
        self.store.close()
        self.host.close()


def _check_no_running_loop() -> None:
    """The sync API runs a private loop, which asyncio forbids inside a running one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(PluginErrors.SYNC_FIXTURE_IN_ASYNC_TEST)


def _raise_error_reply(reply: Any, args: Sequence[Word]) -> None:
    """Store commands return error replies as values; a test wants them raised."""
    from jshost.replies import ErrorReply

    if isinstance(reply, ErrorReply):
        shown = " ".join(w.decode("utf-8", "replace") if isinstance(w, bytes) else str(w)
                         for w in args)
        raise JSHostError(str(reply), shown)


# --- pytest hooks and fixtures -------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("jshost_settings", "jshost host settings for every test, one name=value a line "
                  "(e.g. error-verbosity=2)", type="linelist", default=[])
    parser.addoption("--jshost-redis-url", default=None, metavar="URL",
                     help="run the jshost fixtures against this real Redis (redis://host:port/db)"
                          " instead of an embedded store; tests share its data")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "jshost_settings(mapping=None, **settings): host settings for the jshost/ajshost "
        "fixtures of this test, e.g. error_verbosity=2 (underscores stand for dashes)")


def _settings(request: pytest.FixtureRequest) -> Settings:
    """The host settings: the ini option, then the test's `jshost_settings` markers."""
    from jshost.settings import Settings

    overrides: dict[str, str] = {}
    for line in request.config.getini("jshost_settings"):
        name, sep, value = line.partition("=")
        if not sep:
            raise pytest.UsageError(PluginErrors.BAD_SETTINGS_LINE.format(line=line))
        overrides[name.strip()] = value.strip()
    # Closest marker last, so a test's marker wins over its class's and module's.
    for marker in reversed(list(request.node.iter_markers("jshost_settings"))):
        for mapping in marker.args:
            overrides.update({str(k): str(v) for k, v in dict(mapping).items()})
        overrides.update({k.replace("_", "-"): str(v) for k, v in marker.kwargs.items()})
    return Settings(overrides)


def _test_dir(request: pytest.FixtureRequest) -> Path:
    return Path(request.path).parent


@pytest.fixture
def jshost(request: pytest.FixtureRequest) -> Iterator[JSHost]:
    """An in-process jshost on a fresh embedded store, with a blocking API."""
    from jshost.sync import SyncHost

    store = _remote_store(request)
    sync_host = SyncHost(store, settings=_settings(request))
    fixture = JSHost(sync_host, _test_dir(request))
    try:
        yield fixture
    finally:
        if store is not None:  # its connections belong to the host's loop: close them there
            sync_host.loop.run_until_complete(store.aclose())
        fixture.close()


@pytest.fixture
def ajshost(request: pytest.FixtureRequest) -> Iterator[AsyncJSHost]:
    """An in-process jshost on a fresh embedded store, for `async def` tests: calls are awaited
    on the test's event loop. (A plain fixture, so it works in any asyncio mode.)"""
    from jshost.host import Host

    store = _remote_store(request)
    fixture = AsyncJSHost(Host(store, settings=_settings(request)), _test_dir(request))
    try:
        yield fixture
    finally:
        fixture.close()


def _remote_store(request: pytest.FixtureRequest) -> Any:
    """A `RemoteStore` on `--jshost-redis-url`, or None for the embedded store."""
    url = request.config.getoption("--jshost-redis-url")
    if url is None:
        return None
    from jshost.store import RemoteStore

    return RemoteStore(url)


class JSHostServer:
    """A `jshost serve` process on a free port (see the `jshost_server` fixture)."""

    STARTUP = re.compile(r"listening on (\S+):(\d+) ")

    def __init__(self, *args: str) -> None:
        cmd = [sys.executable, "-m", "jshost", "serve", "--port", "0", *args]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()  # the one startup line (an event)
        match = self.STARTUP.search(line)
        if match is None:
            self.stop()
            raise RuntimeError(f"jshost serve did not start: {line!r}")
        self.host, self.port = match.group(1), int(match.group(2))

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **kwargs: Any) -> Any:
        """A redis-py client for this server."""
        import redis

        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def stop(self) -> int:
        """SIGTERM by PID (a graceful shutdown) and the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=30)


@pytest.fixture
def jshost_server(request: pytest.FixtureRequest) -> Iterator[JSHostServer]:
    """A real `jshost serve` on a free port of 127.0.0.1 (on `--jshost-redis-url` when given),
    stopped after the test: `jshost_server.client()` is a redis-py client for it."""
    url = request.config.getoption("--jshost-redis-url")
    server = JSHostServer(*(["--backend", url] if url else []))
    try:
        yield server
    finally:
        server.stop()
