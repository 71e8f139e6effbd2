"""CLIENT TRACKING on the embedded store: Redis 7's server-assisted client-side caching.

A tracking client is told, with an ``invalidate`` push (RESP3 ``>2 invalidate [keys]``), when a
key it may have cached changes: in the default mode the keys its read-only commands read (each
remembered until its first invalidation), in BCAST mode every key under its prefixes (all keys
without a prefix). OPTIN / OPTOUT with ``CLIENT CACHING yes|no`` choose which reads are
remembered, NOLOOP leaves out the client's own writes. A FLUSHDB / FLUSHALL invalidates
everything (a null key list), as does the expiry of a key.

The store sends every push to the tracking client's own session; ``REDIRECT`` and RESP2 are the
connection's business (jshost routes the push to the redirect target, or drops it for a RESP2
client that cannot take it). As in Redis, keys are tracked by name, whatever the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fakeredis._commands import Signature
from fakeredis._helpers import OK, SimpleError, SimpleString

from jshost.errors import TrackingErrors
from jshost.replies import SetReply
from jshost.store.embedded.signature import signature

INVALIDATE = b"invalidate"


@dataclass
class Tracking:
    """One client's tracking settings (CLIENT TRACKING on ...)."""

    bcast: bool = False
    optin: bool = False
    optout: bool = False
    noloop: bool = False
    prefixes: tuple[bytes, ...] = ()
    #: CLIENT CACHING yes (True) / no (False), for the client's next command only.
    caching: bool | None = None

    def remembers_reads(self) -> bool:
        """Whether the keys of the command being run are to be remembered (not BCAST)."""
        if self.bcast:
            return False
        if self.optin:
            return self.caching is True
        if self.optout:
            return self.caching is not False
        return True

    def flags(self) -> list[bytes]:
        """CLIENT TRACKINGINFO's flags (without `redirect`, which jshost adds)."""
        out = [b"on"]
        for flag, on in ((b"bcast", self.bcast), (b"optin", self.optin),
                         (b"optout", self.optout), (b"noloop", self.noloop)):
            if on:
                out.append(flag)
        if self.optin and self.caching is True:
            out.append(b"caching-yes")
        if self.optout and self.caching is False:
            out.append(b"caching-no")
        return out


def parse_tracking(args: list[bytes]) -> tuple[bool, Tracking, list[bytes]]:
    """``CLIENT TRACKING on|off [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP]`` (REDIRECT is
    handled before the store sees it): (on, the settings, the prefixes as given); `ValueError`
    with Redis' text for a syntax error."""
    switch = args[0].lower() if args else b""
    if switch not in (b"on", b"off"):
        raise ValueError(TrackingErrors.SYNTAX)
    tracking = Tracking()
    prefixes: list[bytes] = []
    i = 1
    while i < len(args):
        word = args[i].lower()
        if word == b"bcast":
            tracking.bcast = True
        elif word == b"optin":
            tracking.optin = True
        elif word == b"optout":
            tracking.optout = True
        elif word == b"noloop":
            tracking.noloop = True
        elif word == b"prefix" and i + 1 < len(args):
            prefixes.append(args[i + 1])
            i += 1
        else:
            raise ValueError(TrackingErrors.SYNTAX)
        i += 1
    return switch == b"on", tracking, prefixes


def _overlap(a: bytes, b: bytes) -> bool:
    return a.startswith(b) or b.startswith(a)


@dataclass
class TrackingTable:
    """Who tracks what, for one store. `invalidated` gives the pushes to send: client id ->
    keys (None: everything)."""

    clients: dict[int, Tracking] = field(default_factory=dict)
    keys: dict[bytes, set[int]] = field(default_factory=dict)  # default mode: key -> readers

    def __bool__(self) -> bool:
        return bool(self.clients)

    def enable(self, client_id: int, tracking: Tracking, prefixes: list[bytes]) -> None:
        """Turn tracking on (again) for a client; `ValueError` with Redis' text, checked in
        Redis' order, when the options do not go together or with the client's current mode."""
        old = self.clients.get(client_id)
        if prefixes and not tracking.bcast:
            raise ValueError(TrackingErrors.PREFIX_BCAST)
        if old is not None and old.bcast != tracking.bcast:
            raise ValueError(TrackingErrors.SWITCH_BCAST)
        if tracking.bcast and (tracking.optin or tracking.optout):
            raise ValueError(TrackingErrors.BCAST_OPT)
        if tracking.optin and tracking.optout:
            raise ValueError(TrackingErrors.OPTIN_OPTOUT)
        if old is not None and (tracking.optin and old.optout or tracking.optout and old.optin):
            raise ValueError(TrackingErrors.SWITCH_OPT)
        kept = old.prefixes if old is not None else ()
        for i, prefix in enumerate(prefixes):
            for existing in kept:
                if _overlap(prefix, existing):
                    raise ValueError(TrackingErrors.prefix_overlap(prefix, existing, True))
            for other in prefixes[i + 1:]:
                if _overlap(prefix, other):
                    raise ValueError(TrackingErrors.prefix_overlap(prefix, other, False))
        tracking.prefixes = (*kept, *prefixes) if tracking.bcast else ()
        if old is not None:
            tracking.caching = old.caching
        self.clients[client_id] = tracking

    def disable(self, client_id: int) -> None:
        self.clients.pop(client_id, None)  # its remembered keys go with their next change

    def remember(self, client_id: int, keys: Iterable[bytes]) -> None:
        for key in keys:
            self.keys.setdefault(key, set()).add(client_id)

    def modified(self, key: bytes, writer: int | None) -> dict[int, list[bytes]]:
        """A write (or expiry: no writer) of `key`: the clients to tell."""
        out: dict[int, list[bytes]] = {}
        for client_id in self.keys.pop(key, ()):
            tracking = self.clients.get(client_id)
            if tracking is None or tracking.bcast or tracking.noloop and client_id == writer:
                continue
            out.setdefault(client_id, []).append(key)
        for client_id, tracking in self.clients.items():
            if not tracking.bcast or tracking.noloop and client_id == writer:
                continue
            if not tracking.prefixes or any(key.startswith(p) for p in tracking.prefixes):
                out.setdefault(client_id, []).append(key)
        return out

    def flushed(self) -> list[int]:
        """FLUSHDB / FLUSHALL: every tracking client is told to drop everything."""
        self.keys.clear()
        return list(self.clients)


class TrackingCommands:
    """Mixin of the store's socket: CLIENT TRACKING, CACHING and TRACKINGINFO (GETREDIR and
    REDIRECT are jshost's: it routes the pushes)."""

    _session: Any
    _client_info: Any

    def _tracking_table(self) -> TrackingTable:
        return self._session.store.tracking  # type: ignore[no-any-return]

    def _tracking_id(self) -> int:
        return int(self._client_info["id"])

    def x_client_tracking(self, *args: bytes) -> SimpleString:
        try:
            on, tracking, prefixes = parse_tracking(list(args))
            if on:
                self._tracking_table().enable(self._tracking_id(), tracking, prefixes)
            else:
                self._tracking_table().disable(self._tracking_id())
        except ValueError as exc:
            raise SimpleError(str(exc)) from None
        return OK

    def x_client_caching(self, mode: bytes) -> SimpleString:
        tracking = self._tracking_table().clients.get(self._tracking_id())
        word = mode.lower()
        if tracking is None or not (tracking.optin or tracking.optout):
            raise SimpleError(TrackingErrors.CACHING)
        if word == b"yes" and tracking.optin:
            tracking.caching = True
        elif word == b"no" and tracking.optout:
            tracking.caching = False
        else:
            raise SimpleError(TrackingErrors.SYNTAX)
        return OK

    def x_client_trackinginfo(self) -> dict[bytes, Any]:
        tracking = self._tracking_table().clients.get(self._tracking_id())
        if tracking is None:
            return {b"flags": SetReply([b"off"]), b"redirect": -1, b"prefixes": []}
        return {b"flags": SetReply(tracking.flags()), b"redirect": 0,
                b"prefixes": list(tracking.prefixes)}


SIGNATURES: dict[str, Signature] = {
    "client tracking": signature("client tracking", "x_client_tracking", (bytes,), (bytes,)),
    "client caching": signature("client caching", "x_client_caching", (bytes,)),
    "client trackinginfo": signature("client trackinginfo", "x_client_trackinginfo", ()),
}
