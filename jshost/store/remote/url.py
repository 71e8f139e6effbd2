"""Where the backend Redis is, and how to log in: `redis://`, `rediss://` (TLS), `unix://`."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from jshost.errors import BackendErrors

DEFAULT_PORT: Final = 6379


def redact(url: str) -> str:
    """`url` with its password (user-info or `?password=`) replaced by `***`, for messages: a
    password never reaches a log or an error text."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}{sep and ':***'}@{hostport}" if sep else netloc
    query = "&".join(
        f"{key}=***" if key == "password" else item
        for item in parts.query.split("&") if item
        for key in [item.partition("=")[0]]
    )
    redacted = url.replace(parts.netloc, netloc, 1) if netloc != parts.netloc else url
    return redacted.replace(parts.query, query, 1) if query != parts.query else redacted


@dataclass(frozen=True)
class RedisURL:
    """Where the backend is and how to log in (parsed from `redis://` / `rediss://`)."""

    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_verify: ssl.VerifyMode = ssl.CERT_REQUIRED
    tls_ca_certs: str | None = None
    #: The Unix socket to connect to (`unix://`); then `host` and `port` are unused.
    path: str | None = None

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        """`redis://[[user]:password@]host[:port][/db][?db=N]`, `rediss://...` for TLS,
        `unix://[[user]:password@]/path/to/redis.sock[?db=N]` for a Unix socket."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                BackendErrors.ERR_BAD_URL.format(
                    url=redact(url), reason="the scheme must be redis, rediss or unix")
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.scheme == "unix":
            return cls._parse_unix(url, parts.path, parts.username, parts.password, query)
        try:
            port = parts.port or DEFAULT_PORT
            db_text = parts.path.strip("/") or query.get("db", "0")
            db = int(db_text)
        except ValueError as exc:
            raise ValueError(BackendErrors.ERR_BAD_URL.format(url=redact(url), reason=exc)) from None
        verify = {
            "none": ssl.CERT_NONE,
            "optional": ssl.CERT_OPTIONAL,
            "required": ssl.CERT_REQUIRED,
        }
        reqs = query.get("ssl_cert_reqs", "required").lower()
        if reqs not in verify or db < 0:
            raise ValueError(
                BackendErrors.ERR_BAD_URL.format(url=redact(url), reason="bad db or ssl_cert_reqs"))
        return cls(
            host=parts.hostname or "localhost",
            port=port,
            db=db,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=parts.scheme == "rediss",
            tls_verify=verify[reqs],
            tls_ca_certs=query.get("ssl_ca_certs"),
        )

    @classmethod
    def _parse_unix(
        cls, url: str, path: str, user: str | None, password: str | None, query: dict[str, str]
    ) -> RedisURL:
        """The `unix://` form: the whole path is the socket, so the database is `?db=N`."""
        if not path:
            raise ValueError(
                BackendErrors.ERR_BAD_URL.format(url=redact(url), reason="no socket path"))
        try:
            db = int(query.get("db", "0"))
        except ValueError as exc:
            raise ValueError(BackendErrors.ERR_BAD_URL.format(url=redact(url), reason=exc)) from None
        if db < 0:
            raise ValueError(BackendErrors.ERR_BAD_URL.format(url=redact(url), reason="bad db"))
        if password is None:
            password = query.get("password")
        if not user:
            user = query.get("username")
        return cls(
            host="localhost",
            db=db,
            username=unquote(user) if user else None,
            password=unquote(password) if password is not None else None,
            path=unquote(path),
        )

    @property
    def address(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def open_socket(self, timeout: float) -> socket.socket:
        """A connected socket to the server (Unix or TCP, no TLS yet); raises OSError."""
        if self.path is None:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(self.path)
        except BaseException:
            sock.close()
            raise
        return sock

    def handshake(self, db: int, name: bytes | None = None) -> list[list[bytes]]:
        """The commands that make a fresh (or RESET) connection usable: HELLO 3 [AUTH] [SETNAME],
        then SELECT when the database is not 0."""
        hello = [b"HELLO", b"3"]
        if self.password is not None:
            hello += [b"AUTH", (self.username or "default").encode(), self.password.encode()]
        if name:
            hello += [b"SETNAME", name]
        commands = [hello]
        if db:
            commands.append([b"SELECT", b"%d" % db])
        return commands

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.tls_ca_certs)
        if self.tls_verify != ssl.CERT_REQUIRED:
            context.check_hostname = False
        context.verify_mode = self.tls_verify
        return context
