"""The servers under test, as child processes, and what `/proc` says about them.

    redis = start_redis(nofile=11_024)                # a Debian redis-server on a free port
    jshost = start_jshost(nofile=11_024)               # `jshost serve` on the embedded store
    remote = start_jshost(11_024, backend=redis.url(1))  # `jshost serve --backend redis://...`
    cpu_seconds(jshost.pid), rss_bytes(jshost.pid)
    jshost.stop()                                      # SIGTERM to its PID, SIGKILL if it hangs

Every server listens on 127.0.0.1 on a free port and runs in a session of its own, so a Ctrl-C
in the terminal reaches only the benchmark, which then stops them by PID (never by name).
"""

from __future__ import annotations

import os
import queue
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REDIS_SERVER = shutil.which("redis-server")
REDIS_BENCHMARK = shutil.which("redis-benchmark")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_STARTUP_LINE = re.compile(r"^jshost \S+ listening on \S+:(\d+) \(store: .*\)$")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-files soft limit to `wanted` (bounded by the hard limit; never
    lowered) and return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


def raise_child_nofile(pid: int, wanted: int) -> int:
    """Raise the open-files soft limit of child `pid` like `raise_nofile` (with prlimit(2): a
    `preexec_fn` is unsafe in a process with threads, and the benchmark has reader threads)."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads) so far, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        text = fh.read()
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of process `pid` (VmRSS of /proc/<pid>/status), in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class ServerProcess:
    """One server started by the benchmark; it owns the process and its output pipes."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int = 0
    log: list[bytes] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM to the PID, wait, SIGKILL if it does not exit; the exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        return self.proc.returncode

    def output(self) -> str:
        return b"".join(self.log).decode(errors="replace")


def _spawn(name: str, argv: Sequence[str], nofile: int) -> ServerProcess:
    """Start `argv` in its own session, with both output pipes drained by threads."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    raise_child_nofile(proc.pid, nofile)  # also inherited from ours; this makes it explicit
    return ServerProcess(name, proc)


def _pump(server: ServerProcess, lines: queue.Queue[bytes | None]) -> None:
    """Start threads that collect the server's output; stdout lines also go to `lines`."""

    def read_stdout() -> None:
        assert server.proc.stdout is not None
        for line in server.proc.stdout:
            server.log.append(line)
            lines.put(line)
        lines.put(None)

    def read_stderr() -> None:
        assert server.proc.stderr is not None
        for line in server.proc.stderr:
            server.log.append(line)

    server._threads = [
        threading.Thread(target=read_stdout, daemon=True),
        threading.Thread(target=read_stderr, daemon=True),
    ]
    for thread in server._threads:
        thread.start()


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(nofile: int) -> ServerProcess:
    """A redis-server on a free port, without persistence; returns once it answers PING."""
    if REDIS_SERVER is None:
        raise RuntimeError("redis-server is not on PATH")
    port = free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--daemonize", "no", "--maxclients", "10000"]
    server = _spawn("redis-server", argv, nofile)
    server.port = port
    _pump(server, queue.Queue())
    deadline = time.monotonic() + START_TIMEOUT
    while not _ping(port):
        if not server.alive() or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"redis-server did not start:\n{server.output()}")
        time.sleep(0.05)
    return server


#: Descriptors a jshost keeps beside its clients (jshost.listener_config.RESERVED_FDS).
JSHOST_RESERVED_FDS = 64


def jshost_argv(backend: str | None = None, profile_to: Path | None = None,
                nofile: int | None = None, extra: Sequence[str] = ()) -> list[str]:
    """The command line of `jshost serve` on a free port (under cProfile with `profile_to`);
    with `nofile`, maxclients is as many clients as that many descriptors allow."""
    argv = [sys.executable]
    if profile_to is not None:
        argv += ["-m", "cProfile", "-o", str(profile_to)]
    argv += ["-m", "jshost", "serve", "--port", "0"]
    if nofile is not None:
        argv += ["--maxclients", str(max(1, nofile - JSHOST_RESERVED_FDS))]
    argv += list(extra)
    if backend is not None:
        argv += ["--backend", backend]
    return argv


def start_jshost(
    nofile: int,
    backend: str | None = None,
    profile_to: Path | None = None,
    name: str = "jshost",
    extra: Sequence[str] = (),
) -> ServerProcess:
    """`jshost serve` (with `extra` options); returns once it has printed its port."""
    server = _spawn(name, jshost_argv(backend, profile_to, nofile, extra), nofile)
    lines: queue.Queue[bytes | None] = queue.Queue()
    _pump(server, lines)
    try:
        line = lines.get(timeout=START_TIMEOUT)
    except queue.Empty:
        line = None
    match = _STARTUP_LINE.match(line.decode().strip()) if line else None
    if match is None:
        server.stop()
        raise RuntimeError(f"{name} did not start:\n{server.output()}")
    server.port = int(match.group(1))
    return server
