"""Servers for the end-to-end tests: in process, or a real `jshost serve` subprocess.

In process (most tests; the test and the server share one event loop, so clients must be async:
`redis.asyncio`, asyncio streams or subprocesses)::

    async with running_server() as server:
        port = server.port

As a subprocess (CLI and signal tests; stopped by its PID, never by name)::

    proc = JshostProcess("--requirepass", "pw").start()   # reads the real port from stdout
    ... redis.Redis(port=proc.port) ...
    assert proc.stop(signal.SIGTERM) == 0                  # exit status, bounded wait
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

from jshost.host import Host
from jshost.resp import ReplyParser, encode_command
from jshost.server import Server
from jshost.settings import Settings
from jshost.store import EmbeddedStore

STARTUP_LINE = re.compile(
    r"^jshost (\S+) listening on (\S+):(\d+)(?: and tls \S+:(\d+))? \(store: (\w+)[^)]*\)$")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
REPO = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def running_server(
    *, requirepass: str | None = None, settings: Settings | None = None
) -> AsyncIterator[Server]:
    """A started in-process `Server` on a free port, over a fresh embedded store."""
    host = Host(EmbeddedStore(), settings)
    server = Server(host, port=0, requirepass=requirepass)
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown()
        host.close()
        await host.store.aclose()


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Re-check `condition` (each check is a real round trip or a state read) until it holds;
    fail after `timeout` seconds. Synchronises on state, never on a fixed delay."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.005)  # yield between checks; the check is the sync point
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class JshostProcess:
    """`python -m jshost serve --port 0 ...` as a child process."""

    def __init__(self, *args: str) -> None:
        self.args: tuple[str, ...] = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.tls_port = 0
        self.store = ""
        self.startup_line = ""
        self.stderr: list[bytes] = []
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        return [*self.prefix, sys.executable, "-m", "jshost", "serve", "--port", "0", *self.args]

    #: Words before the command (e.g. `ip netns exec NAME`).
    prefix: tuple[str, ...] = ()

    def start(self) -> JshostProcess:
        """Start the server and return once it has printed where it listens."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env
        )
        # Threads drain both pipes (so the server never stalls on a full pipe) and hand the
        # stdout lines over through a queue: the startup line is an event, not a delay.
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            line = self._lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.kill()
            raise RuntimeError(f"jshost did not start in {START_TIMEOUT}s: {self.log()}") from None
        if line is None:
            self.kill()
            raise RuntimeError(f"jshost exited at start: {self.log()}")
        self.startup_line = line.decode().rstrip("\n")
        match = STARTUP_LINE.match(self.startup_line)
        if match is None:
            self.kill()
            raise RuntimeError(f"unexpected startup line {self.startup_line!r}")
        self.port = int(match.group(3))
        self.tls_port = int(match.group(4) or 0)
        self.store = match.group(5)
        return self

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send `signum` to the server's PID and return its exit status (it must exit in time)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"jshost did not exit within {timeout}s of {signum}") from None
        self._join()
        return status

    def kill(self) -> None:
        """SIGKILL by PID (cleanup only)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)
        self._join()

    def log(self) -> str:
        return b"".join(self.stderr).decode(errors="replace")

    def _join(self) -> None:
        for thread in self._threads:
            thread.join(STOP_TIMEOUT)

    @staticmethod
    def _pump(pipe: Any, lines: queue.Queue[bytes | None]) -> None:
        for line in pipe:
            lines.put(line)
        lines.put(None)

    def _drain(self, pipe: Any) -> None:
        for line in pipe:
            self.stderr.append(line)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def library(body: str, name: str = "lib") -> str:
    """Library code with the rg prologue."""
    return f"#!js api_version=1.0 name={name}\n{body}"


def command_bytes(*commands: Sequence[bytes | str]) -> bytes:
    """Several commands as one RESP request buffer (a pipeline)."""
    return b"".join(encode_command(list(c)) for c in commands)


class RawClient:
    """A bare asyncio-streams client: send exact bytes, read typed replies or raw bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = ReplyParser()

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_commands(self, *commands: Sequence[bytes | str]) -> None:
        await self.send(command_bytes(*commands))

    async def reply(self, timeout: float = 10.0) -> Any:
        """The next reply, typed (errors are returned as `ErrorReply`)."""
        raw = await self.reply_raw(timeout)
        parser = ReplyParser()
        parser.feed(raw)
        return parser.get_reply()

    async def reply_raw(self, timeout: float = 10.0) -> bytes:
        """The exact bytes of the next reply."""
        async with asyncio.timeout(timeout):
            while True:
                got = self.parser.get_reply_with_raw()
                if got is not None:
                    return got[1]
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("the server closed the connection")
                self.parser.feed(data)

    async def replies(self, count: int, timeout: float = 10.0) -> list[Any]:
        return [await self.reply(timeout) for _ in range(count)]

    async def call(self, *args: bytes | str) -> Any:
        await self.send_commands(args)
        return await self.reply()

    async def read_until_closed(self, timeout: float = 10.0) -> bytes:
        """Everything the server still sends, up to its closing the connection."""
        async with asyncio.timeout(timeout):
            return await self.reader.read()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
