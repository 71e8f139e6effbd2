"""The settings and facts of jshost's own listener, in one list.

Redis clients read and change these with ``CONFIG GET`` / ``CONFIG SET`` (and `INFO` reports
some of them). They describe *jshost's* socket, not the store's, so jshost answers them itself
on every store and never passes them on: on ``--backend`` a ``CONFIG SET port`` or ``bind``
reaching the backend would open a port on a server clients must not reach directly, and the
backend's ``CONFIG GET port`` would send a client around jshost.

=============================  ===========================  =======  ============================
name                           default                      CONFIG   meaning (as in Redis)
                                                            SET
=============================  ===========================  =======  ============================
port                           6379                         no       TCP port (0: none); GET
                                                                     shows the port bound
bind                           127.0.0.1                    no       addresses, space-separated
tcp-backlog                    4096 (Redis: 511)            no       listen(2) backlog
tls-port                       0                            no       TLS port (0: none)
tls-cert-file, tls-key-file    ""                           no       the server's certificate
tls-ca-cert-file               ""                           no       CA that signs client certs
tls-auth-clients               yes                          no       yes / optional / no
unixsocket, unixsocketperm     "", 0                        no       (jshost has no Unix socket)
protected-mode                 yes                          yes      refuse non-loopback clients
                                                                     while no password is set
maxclients                     10000                        yes      more clients are refused
requirepass                    ""                           yes      the `default` user's password
timeout                        0                            yes      close clients idle this long
                                                                     (seconds; 0: never)
client-query-buffer-limit      1gb                          yes      unparsed input per client
client-output-buffer-limit     normal 0 0 0 slave 256mb     yes      unsent output per client
                               64mb 60 pubsub 32mb 8mb 60            class
=============================  ===========================  =======  ============================

Values are parsed and shown as Redis parses and shows them (sizes as byte counts, booleans as
yes/no), and ``CONFIG SET`` of several names is all or nothing, with Redis's error texts.
What cannot change while jshost runs is refused with Redis's "can't set immutable config".
The defaults are Redis's, except `tcp-backlog` (see `ListenerConfig.__init__`) and `bind`.
"""

from __future__ import annotations

import ipaddress
import resource
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from jshost import errors
from jshost.errors import ListenerErrors, ReplyError
from jshost.settings import glob_match, parse_integer, parse_size, parse_yes_no


@dataclass(frozen=True)
class OutputBufferLimit:
    """Redis's ``client-output-buffer-limit <class> <hard> <soft> <soft-seconds>``: a client is
    closed when its unsent output passes `hard`, or stays above `soft` for `soft_seconds`
    (0 means no such limit)."""

    hard: int
    soft: int
    soft_seconds: float

    @property
    def unlimited(self) -> bool:
        return not self.hard and not self.soft


#: Redis's defaults (``client-output-buffer-limit normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb
#: 8mb 60``): normal clients have no limit, pub/sub clients are closed past 32 MiB.
NORMAL_OUTPUT_BUFFER_LIMIT: Final = OutputBufferLimit(0, 0, 0)
REPLICA_OUTPUT_BUFFER_LIMIT: Final = OutputBufferLimit(256 << 20, 64 << 20, 60)
PUBSUB_OUTPUT_BUFFER_LIMIT: Final = OutputBufferLimit(32 << 20, 8 << 20, 60)
#: The classes in Redis's order, by the name CONFIG GET shows (replicas are "slave" there).
OUTPUT_CLASSES: Final = ("normal", "slave", "pubsub")
_CLASS_ALIASES: Final = {"normal": "normal", "slave": "slave", "replica": "slave",
                         "pubsub": "pubsub"}

#: File descriptors kept for jshost's own use besides its clients (Redis keeps 32). On a remote
#: store a client that needs a backend connection of its own (SELECT, MULTI, blocking commands,
#: pub/sub) takes one more; should that fail, the client gets a connection error, not the server.
RESERVED_FDS: Final = 64

_UINT_MAX: Final = 2**32 - 1
_INT_MAX: Final = 2**31 - 1
_LONG_MAX: Final = 2**63 - 1


def parse_output_buffer_limits(text: str) -> dict[str, OutputBufferLimit]:
    """``<class> <hard> <soft> <seconds> ...`` (Redis's syntax); ValueError with Redis's
    reason. Classes not named keep their value (the caller merges)."""
    words = text.split()
    if not words or len(words) % 4:
        raise ValueError(ListenerErrors.OUTPUT_LIMIT_ARGUMENTS)
    limits: dict[str, OutputBufferLimit] = {}
    for i in range(0, len(words), 4):
        name = _CLASS_ALIASES.get(words[i].lower())
        if name is None:
            raise ValueError(ListenerErrors.OUTPUT_LIMIT_CLASS)
        try:
            hard, soft = parse_size(words[i + 1]), parse_size(words[i + 2])
            seconds = parse_integer(words[i + 3])
        except ValueError:
            raise ValueError(ListenerErrors.OUTPUT_LIMIT_VALUES) from None
        if seconds < 0:
            raise ValueError(ListenerErrors.OUTPUT_LIMIT_VALUES)
        limits[name] = OutputBufferLimit(hard, soft, seconds)
    return limits


def format_output_buffer_limits(limits: Mapping[str, OutputBufferLimit]) -> str:
    return " ".join(
        f"{name} {limits[name].hard} {limits[name].soft} {int(limits[name].soft_seconds)}"
        for name in OUTPUT_CLASSES
    )


def _ranged(low: int, high: int, size: bool = False) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_size(text) if size else parse_integer(text)
        if not low <= value <= high:
            raise ValueError(errors.config_out_of_range(low, high))
        return value

    return parse


def _tls_auth(text: str) -> str:
    lowered = text.lower()
    if lowered not in ("yes", "no", "optional"):
        raise ValueError(errors.config_not_in_enum(("no", "yes", "optional")))
    return lowered


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return " ".join(value)
    if isinstance(value, dict):
        return format_output_buffer_limits(value)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class _Option:
    name: str
    attribute: str
    parse: Callable[[str], Any]
    mutable: bool


_OPTIONS: Final = (
    _Option("port", "port", _ranged(0, 65535), False),
    _Option("bind", "bind", lambda text: tuple(text.split()), False),
    _Option("tcp-backlog", "tcp_backlog", _ranged(0, _INT_MAX), False),
    _Option("tls-port", "tls_port", _ranged(0, 65535), False),
    _Option("tls-cert-file", "tls_cert_file", str, False),
    _Option("tls-key-file", "tls_key_file", str, False),
    _Option("tls-ca-cert-file", "tls_ca_cert_file", str, False),
    _Option("tls-auth-clients", "tls_auth_clients", _tls_auth, False),
    _Option("unixsocket", "unixsocket", str, False),
    _Option("unixsocketperm", "unixsocketperm", _ranged(0, 0o777), False),
    _Option("protected-mode", "protected_mode", parse_yes_no, True),
    _Option("maxclients", "maxclients", _ranged(1, _UINT_MAX), True),
    _Option("requirepass", "requirepass", lambda text: text or None, True),
    _Option("timeout", "timeout", _ranged(0, _INT_MAX), True),
    _Option("client-query-buffer-limit", "client_query_buffer_limit",
            _ranged(1 << 20, _LONG_MAX, size=True), True),
    _Option("client-output-buffer-limit", "output_buffer_limits", parse_output_buffer_limits,
            True),
)
_BY_NAME: Final = {option.name: option for option in _OPTIONS}
#: Every name the listener owns (lower case): CONFIG GET/SET of these never reach the store.
NAMES: Final = frozenset(_BY_NAME)


class ListenerConfig:
    """The current values (attributes named after the settings, `-` as `_`); see the module
    docstring. `on_change` callbacks run after a successful `set_many` with the names set."""

    port: int
    bind: tuple[str, ...]
    tcp_backlog: int
    tls_port: int
    tls_cert_file: str
    tls_key_file: str
    tls_ca_cert_file: str
    tls_auth_clients: str
    unixsocket: str
    unixsocketperm: int
    protected_mode: bool
    maxclients: int
    requirepass: str | None
    timeout: int
    client_query_buffer_limit: int
    output_buffer_limits: dict[str, OutputBufferLimit]

    def __init__(self, values: Mapping[str, str] | None = None, **typed: Any) -> None:
        """Redis's defaults, then `values` (names as in CONFIG, Redis syntax; ValueError with
        the reason), then `typed` values by attribute name."""
        self.port = 6379
        self.bind = ("127.0.0.1",)
        # Deeper than Redis's 511: Python accepts a few times slower than Redis, and a burst of
        # connections that overflows the accept queue costs each dropped client a one-second
        # SYN retransmission (bench/connections.py). The kernel caps it at net.core.somaxconn.
        self.tcp_backlog = 4096
        self.tls_port = 0
        self.tls_cert_file = self.tls_key_file = self.tls_ca_cert_file = ""
        self.tls_auth_clients = "yes"
        self.unixsocket = ""
        self.unixsocketperm = 0
        self.protected_mode = True
        self.maxclients = 10_000
        self.requirepass = None
        self.timeout = 0
        self.client_query_buffer_limit = 1 << 30
        self.output_buffer_limits = {
            "normal": NORMAL_OUTPUT_BUFFER_LIMIT,
            "slave": REPLICA_OUTPUT_BUFFER_LIMIT,
            "pubsub": PUBSUB_OUTPUT_BUFFER_LIMIT,
        }
        self.on_change: list[Callable[[frozenset[str]], None]] = []
        for name, text in (values or {}).items():
            option = _BY_NAME.get(name.lower())
            if option is None:
                raise ValueError(errors.unknown_setting(name))
            try:
                self._assign(option, option.parse(text))
            except ValueError as exc:
                raise ValueError(errors.invalid_setting(name, str(exc))) from None
        for attribute, value in typed.items():
            if not hasattr(self, attribute):
                raise TypeError(f"no listener setting {attribute!r}")
            setattr(self, attribute, value)

    # --- what the listener decides ---------------------------------------------------------------

    def output_limit(self, subscribed: bool) -> OutputBufferLimit:
        """The output buffer limit of a client's class (Redis's getClientType)."""
        return self.output_buffer_limits["pubsub" if subscribed else "normal"]

    def protected_mode_refuses(self, peer_host: str | None) -> bool:
        """Redis's protected mode: with `protected-mode yes` and no password, a client that is
        not on the loopback interface is refused (Unix sockets are local)."""
        if not self.protected_mode or self.requirepass is not None:
            return False
        return not is_loopback(peer_host)

    @property
    def exposed_unprotected(self) -> list[str]:
        """Bind addresses beyond loopback while no password is set (a start-up warning)."""
        if self.requirepass is not None:
            return []
        return [address for address in self.bind if not is_loopback(address)]

    def reserve_descriptors(self, maxclients: int) -> int:
        """Raise the open-files limit for `maxclients` clients (as Redis's
        adjustOpenFilesLimit) and return how many clients it allows (`maxclients` or fewer)."""
        needed = maxclients + RESERVED_FDS
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < needed:
            target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
        if soft == resource.RLIM_INFINITY or soft >= needed:
            return maxclients
        return max(0, soft - RESERVED_FDS)

    # --- CONFIG GET / SET ----------------------------------------------------------------------

    def get(self, patterns: Iterable[str]) -> list[tuple[str, str]]:
        """CONFIG GET: (name, value) for each setting a pattern matches (glob, no case)."""
        found: dict[str, str] = {}
        for pattern in patterns:
            for option in _OPTIONS:
                if option.name not in found and glob_match(pattern, option.name):
                    found[option.name] = _text(getattr(self, option.attribute))
        return list(found.items())

    def set_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        """CONFIG SET of listener names, all or nothing; ReplyError with Redis's text."""
        options: list[_Option] = []
        for name, _ in pairs:
            option = _BY_NAME[name.lower()]
            if not option.mutable:
                raise ReplyError(errors.config_set_failed(name, errors.CONFIG_IMMUTABLE))
            if option in options:
                raise ReplyError(errors.config_set_failed(name, errors.CONFIG_DUPLICATE))
            options.append(option)
        parsed = []
        for option, (_, text) in zip(options, pairs, strict=True):
            try:
                value = option.parse(text)
                if option.name == "maxclients":
                    allowed = self.reserve_descriptors(value)
                    if allowed < value:
                        raise ValueError(ListenerErrors.MAXCLIENTS_OVER_LIMIT.format(allowed))
            except ValueError as exc:
                raise ReplyError(errors.config_set_failed(option.name, str(exc))) from None
            parsed.append((option, value))
        for option, value in parsed:
            self._assign(option, value)
        names = frozenset(option.name for option in options)
        for callback in self.on_change:
            callback(names)

    def _assign(self, option: _Option, value: Any) -> None:
        if option.name == "client-output-buffer-limit":
            value = {**self.output_buffer_limits, **value}
        setattr(self, option.attribute, value)


def owns(name: bytes | str) -> bool:
    """Whether the listener answers CONFIG GET/SET of `name` (an exact name, any case)."""
    text = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
    return text.lower() in NAMES


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an IP address as text; None: a Unix socket) is on the loopback
    interface: 127.0.0.0/8, ::1, or either mapped into IPv6."""
    if host is None or host.startswith("127.") or host == "::1":  # (the common case, fast)
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host == "localhost"
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)
