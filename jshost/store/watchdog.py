"""The watchdog between jshost and the store server it manages (`jshost.store.managed`).

    python -I watchdog.py --lock DATA/valkey.lock [--cleanup DIR] -- valkey-server ARGS...

It is the server's parent and lives exactly as long as it needs to: it stops the server when
jshost goes away, however jshost goes (its graceful stop, a crash, SIGKILL). jshost holds the
write end of the watchdog's stdin; the kernel closes it when jshost dies, so EOF on stdin means
"stop the server": SIGTERM (the server fsyncs its AOF and exits), SIGKILL after
`STOP_TIMEOUT`. This works on Linux and macOS alike, unlike `PR_SET_PDEATHSIG` (Linux only, and
it fires when the forking *thread* ends).

Before starting the server it takes an exclusive `flock` on `--lock` and hands it to the server:
the lock is held until the last of the two is gone, so a next server on the same directory (a
restart, or a new jshost after a crash) starts only once this one has stopped writing.

It reports to jshost on stdout, one line each: `waiting` (another server holds the lock),
`pid N` (the server started), `log TEXT` (a line of the server's log), `ready` (the server
accepts connections), `exit N` (the server exited on its own, status N; then the watchdog exits
with 1). When jshost is gone these lines go nowhere, which is fine.

Standard library only, and run by path with `python -I`: it must start fast and must not import
jshost (or anything the user's environment could shadow).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
from typing import IO

#: How long the server may take to stop after SIGTERM before it is killed (seconds): it saves an
#: RDB snapshot at shutdown, which takes a while on a large data set.
STOP_TIMEOUT = 60.0
#: The server's log line that says it accepts connections (Redis 7.0: "Ready to accept
#: connections"; Redis 7.2 and Valkey add " tcp" / " unix").
READY_MARK = b"eady to accept connections"


class _Stopped(Exception):
    """Stop requested while waiting for the lock (raised by the SIGTERM handler)."""


class Watchdog:
    def __init__(self, server_argv: list[str], lock_path: str, cleanup: str | None) -> None:
        self.server_argv = server_argv
        self.lock_path = lock_path
        self.cleanup = cleanup
        self.server: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self._locking = False  # blocked in flock: a stop must interrupt it
        self._report_lock = threading.Lock()

    def report(self, line: str | bytes) -> None:
        """One line to jshost (dropped once jshost is gone)."""
        data = line if isinstance(line, bytes) else line.encode()
        with self._report_lock:
            try:
                sys.stdout.buffer.write(data.rstrip(b"\n") + b"\n")
                sys.stdout.buffer.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass

    def run(self) -> int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # jshost decides when the server stops
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        threading.Thread(target=self._watch_jshost, daemon=True).start()
        try:
            lock_fd = self._lock()
        except _Stopped:
            return 0
        try:
            self.server = subprocess.Popen(
                self.server_argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(lock_fd,),
            )
        except OSError as exc:
            self.report(f"log cannot run {self.server_argv[0]}: {exc.strerror or exc}")
            self.report("exit 127")
            return 1
        os.close(lock_fd)  # the server holds it now
        if self.stopping.is_set():  # jshost went away while the server was starting
            self.stop()
        self.report(f"pid {self.server.pid}")
        log = threading.Thread(target=self._forward_log, args=(self.server.stdout,), daemon=True)
        log.start()
        status = self.server.wait()
        log.join(5.0)
        if self.stopping.is_set():
            self._clean_up()
            return 0
        self.report(f"exit {status}")
        return 1

    def _lock(self) -> int:
        """Take the server lock, waiting for a previous server on the directory to stop."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.report("waiting")
            self._locking = True
            if self.stopping.is_set():
                raise _Stopped from None
            fcntl.flock(fd, fcntl.LOCK_EX)  # a stop interrupts it (see `stop`)
            self._locking = False
        return fd

    def _on_sigterm(self, signum: int, frame: object) -> None:
        if self._locking:
            raise _Stopped
        self.stop()

    def stop(self) -> None:
        """Stop the server: SIGTERM now, SIGKILL after STOP_TIMEOUT (a stop that comes before
        the server has started keeps it from starting)."""
        self.stopping.set()
        if self._locking and threading.current_thread() is not threading.main_thread():
            os.kill(os.getpid(), signal.SIGTERM)  # wakes the main thread out of flock
            return
        server = self.server
        if server is not None and server.poll() is None:
            server.terminate()
            timer = threading.Timer(STOP_TIMEOUT, self._kill)
            timer.daemon = True
            timer.start()

    def _kill(self) -> None:
        server = self.server
        if server is not None and server.poll() is None:
            self.report("log the server did not stop in time: killed")
            server.kill()

    def _watch_jshost(self) -> None:
        """Return at EOF on stdin: jshost closed it or died."""
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        self.stop()

    def _forward_log(self, pipe: IO[bytes]) -> None:
        ready = False
        for line in pipe:
            self.report(b"log " + line.rstrip(b"\r\n"))
            if not ready and READY_MARK in line:
                ready = True
                self.report("ready")

    def _clean_up(self) -> None:
        if self.cleanup is not None:
            shutil.rmtree(self.cleanup, ignore_errors=True)


def main(argv: list[str]) -> int:
    lock_path: str | None = None
    cleanup: str | None = None
    rest = list(argv)
    while rest and rest[0] != "--":
        option = rest.pop(0)
        if option == "--lock" and rest:
            lock_path = rest.pop(0)
        elif option == "--cleanup" and rest:
            cleanup = rest.pop(0)
        else:
            print(f"watchdog: unexpected argument {option!r}", file=sys.stderr)
            return 2
    if lock_path is None or len(rest) < 2:
        print("usage: watchdog.py --lock PATH [--cleanup DIR] -- SERVER ARGS...", file=sys.stderr)
        return 2
    return Watchdog(rest[1:], lock_path, cleanup).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
