"""What the embedded store records about the commands it runs: Redis' slow log (`SLOWLOG`), its
latency monitor (`LATENCY LATEST/HISTORY/RESET`) and per-command latency histograms (`LATENCY
HISTOGRAM`). Plain data, no fakeredis: `EmbeddedStore` times each command and calls `record`.

As in Redis 7.2: a command taking at least `slowlog-log-slower-than` microseconds (default
10000; 0 logs every command, a negative value none) goes into a log of at most
`slowlog-max-len` entries (128), newest first, its arguments shortened (at most 32, each at most
128 bytes) and secrets redacted; one taking at least `latency-monitor-threshold` milliseconds
(default 0: off) is a sample of the latency event `command` (or `fast-command` for a command
with the `fast` flag), at most one per second (the highest) and 160 per event.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SLOWLOG_MAX_ARGC = 32  # Redis' SLOWLOG_ENTRY_MAX_ARGC
SLOWLOG_MAX_STRING = 128  # Redis' SLOWLOG_ENTRY_MAX_STRING
LATENCY_SAMPLES = 160  # Redis' LATENCY_TS_LEN
_REDACTED = b"(redacted)"
#: CONFIG SET values Redis 7 hides from the slow log (its SENSITIVE_CONFIG settings).
_SENSITIVE_CONFIG = frozenset((b"requirepass", b"masterauth", b"masteruser", b"tls-key-file-pass",
                               b"tls-client-key-file-pass"))


@dataclass(frozen=True, slots=True)
class SlowlogEntry:
    id: int
    timestamp: int  # unix seconds
    duration: int  # microseconds
    args: list[bytes]
    client_addr: bytes
    client_name: bytes

    def to_reply(self) -> list[Any]:
        return [self.id, self.timestamp, self.duration, list(self.args), self.client_addr,
                self.client_name]


def slowlog_args(argv: Sequence[bytes]) -> list[bytes]:
    """`argv` as the slow log keeps it: shortened, with passwords replaced."""
    args = list(argv)
    name = args[0].lower() if args else b""
    if name == b"config" and len(args) > 2 and args[1].lower() == b"set":
        for i in range(2, len(args) - 1, 2):
            if args[i].lower() in _SENSITIVE_CONFIG:
                args[i + 1] = _REDACTED
    elif name == b"migrate":
        for i, arg in enumerate(args[:-1]):
            word = arg.lower()
            if word == b"auth":
                args[i + 1] = _REDACTED
            elif word == b"auth2" and i + 2 < len(args):
                args[i + 1] = args[i + 2] = _REDACTED
    kept = args[:SLOWLOG_MAX_ARGC]
    if len(args) > SLOWLOG_MAX_ARGC:
        kept[-1] = b"... (%d more arguments)" % (len(args) - SLOWLOG_MAX_ARGC + 1)
    return [
        a[:SLOWLOG_MAX_STRING] + b"... (%d more bytes)" % (len(a) - SLOWLOG_MAX_STRING)
        if len(a) > SLOWLOG_MAX_STRING else a
        for a in kept
    ]


@dataclass(slots=True)
class LatencyEvent:
    samples: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    max: int = 0  # the highest latency (ms) ever recorded for the event


@dataclass(slots=True)
class Histogram:
    calls: int = 0
    usec: int = 0  # the total time (INFO commandstats)
    buckets: list[int] = field(default_factory=lambda: [0] * 64)  # by power of two, in us

    def add(self, micros: int) -> None:
        self.calls += 1
        self.usec += micros
        self.buckets[(micros - 1).bit_length() if micros > 1 else 0] += 1

    def percentile(self, p: float) -> int:
        """The power of two (us) that `p` percent of the calls took at most."""
        wanted, seen = self.calls * p / 100, 0
        for power, count in enumerate(self.buckets):
            seen += count
            if count and seen >= wanted:
                return 1 << power
        return 0

    def to_reply(self) -> dict[bytes, Any]:
        """Redis' shape: `calls`, and the cumulative count at each power of two (us) reached."""
        cumulative, points = 0, {}
        for power, count in enumerate(self.buckets):
            if count:
                cumulative += count
                points[1 << power] = cumulative
        return {b"calls": self.calls, b"histogram_usec": points}


class CommandMonitor:
    """The slow log, the latency events and the per-command histograms of one store."""

    def __init__(self) -> None:
        self.slowlog: deque[SlowlogEntry] = deque()
        self.next_id = 0
        self.events: dict[bytes, LatencyEvent] = {}
        self.histograms: dict[bytes, Histogram] = {}

    def record(
        self,
        argv: Sequence[bytes],
        micros: int,
        *,
        slower_than: int,
        max_len: int,
        latency_threshold_ms: int,
        fast: bool,
        client: tuple[bytes, bytes],
        track_histograms: bool,
    ) -> None:
        """One command that took `micros` microseconds; `client` is (address, name)."""
        if track_histograms:
            self.count(argv[0].lower(), micros)
        self.record_slow(argv, micros, slower_than=slower_than, max_len=max_len,
                         latency_threshold_ms=latency_threshold_ms, fast=fast, client=client)

    def count(self, name: bytes, micros: int) -> None:
        """The per-command histogram (every command, while latency-tracking is on)."""
        histogram = self.histograms.get(name)
        if histogram is None:
            histogram = self.histograms[name] = Histogram()
        histogram.add(micros)

    def record_slow(
        self,
        argv: Sequence[bytes],
        micros: int,
        *,
        slower_than: int,
        max_len: int,
        latency_threshold_ms: int,
        fast: bool,
        client: tuple[bytes, bytes],
    ) -> None:
        """The slow log and the latency events, for a command that may be slow."""
        if 0 <= slower_than <= micros:
            entry = SlowlogEntry(self.next_id, int(time.time()), micros, slowlog_args(argv),
                                 *client)
            self.next_id += 1
            self.slowlog.appendleft(entry)
        while len(self.slowlog) > max(0, max_len):
            self.slowlog.pop()
        millis = micros // 1000
        if latency_threshold_ms > 0 and millis >= latency_threshold_ms:
            self.add_latency(b"fast-command" if fast else b"command", millis)

    def add_latency(self, event: bytes, millis: int) -> None:
        """One sample per second and event: the highest (Redis' latencyAddSample)."""
        now = int(time.time())
        record = self.events.get(event)
        if record is None:
            record = self.events[event] = LatencyEvent()
        record.max = max(record.max, millis)
        if record.samples and record.samples[-1][0] == now:
            if record.samples[-1][1] < millis:
                record.samples[-1] = (now, millis)
            return
        record.samples.append((now, millis))

    # -- the commands' replies ---------------------------------------------------------------------

    def slowlog_get(self, count: int) -> list[list[Any]]:
        entries = list(self.slowlog) if count < 0 else list(self.slowlog)[:count]
        return [entry.to_reply() for entry in entries]

    def slowlog_reset(self) -> None:
        self.slowlog.clear()

    def latency_latest(self) -> list[list[Any]]:
        return [
            [event, record.samples[-1][0], record.samples[-1][1], record.max]
            for event, record in self.events.items()
            if record.samples
        ]

    def latency_history(self, event: bytes) -> list[list[int]]:
        record = self.events.get(event)
        return [] if record is None else [[when, ms] for when, ms in record.samples]

    def latency_reset(self, events: Sequence[bytes]) -> int:
        if not events:
            count = len(self.events)
            self.events.clear()
            return count
        return sum(1 for event in dict.fromkeys(events) if self.events.pop(event, None))

    def latency_doctor(self, threshold_ms: int) -> bytes:
        if threshold_ms <= 0 and not self.events:
            return (b"Latency monitoring is disabled in jshost's embedded store: "
                    b"CONFIG SET latency-monitor-threshold <milliseconds> enables it.\n")
        if not self.events:
            return b"No latency spike was observed since the latency monitor was enabled.\n"
        lines = [
            b"%s: %d samples, latest %d ms, highest %d ms" % (
                event, len(record.samples), record.samples[-1][1] if record.samples else 0,
                record.max)
            for event, record in self.events.items()
        ]
        return b"\n".join(lines) + b"\n"

    def latency_histogram(self, names: Sequence[bytes]) -> dict[bytes, Any]:
        wanted = [n.lower() for n in names] or sorted(self.histograms)
        return {name: self.histograms[name].to_reply() for name in wanted
                if name in self.histograms}
