"""CLIENT TRACKING on the embedded store (jshost.store.embedded.tracking): which reads are
remembered, who is told about which write, and Redis' errors. (The REDIRECT option and RESP2
delivery are jshost's connection's: tests/test_client_cmd.py.)"""

from __future__ import annotations

import pytest

from jshost.replies import ErrorReply, Push
from jshost.store import EmbeddedSession, EmbeddedStore


def a(line: str) -> list[bytes]:
    return [part.encode() for part in line.split(" ")]


@pytest.fixture
def store() -> EmbeddedStore:
    return EmbeddedStore()


def tracker(store: EmbeddedStore, options: str = "") -> tuple[EmbeddedSession, list[Push]]:
    session = store.open_session()
    pushes: list[Push] = []
    session.on_push = pushes.append
    assert session.call(a(f"CLIENT TRACKING on {options}".strip())) == b"OK"
    return session, pushes


def invalidated(pushes: list[Push]) -> list[list[bytes] | None]:
    return [p[1] for p in pushes if p[0] == b"invalidate"]


def test_reads_are_remembered_until_the_first_change(store: EmbeddedStore) -> None:
    s, pushes = tracker(store)
    other = store.open_session()
    s.call(a("GET k"))
    s.call(a("MGET a b"))
    s.call(a("SET w 1"))  # a write is not a read: w is not tracked
    other.call(a("SET k 1"))
    other.call(a("SET k 2"))  # told once: the client has to read it again to hear again
    other.call(a("SET w 2"))
    other.call(a("DEL a"))  # deletes nothing: no change, nobody is told
    other.call(a("MSET a 1 b 2"))
    assert invalidated(pushes) == [[b"k"], [b"a"], [b"b"]]
    s.call(a("CLIENT TRACKING off"))
    s.call(a("GET z"))
    other.call(a("SET z 1"))
    assert len(invalidated(pushes)) == 3


def test_own_writes_and_noloop(store: EmbeddedStore) -> None:
    s, pushes = tracker(store)
    s.call(a("GET k"))
    s.call(a("SET k 1"))  # its own write: told too
    assert invalidated(pushes) == [[b"k"]]
    s2, pushes2 = tracker(store, "NOLOOP")
    s2.call(a("GET j"))
    s2.call(a("SET j 1"))
    assert invalidated(pushes2) == []


def test_bcast_prefixes(store: EmbeddedStore) -> None:
    _s, pushes = tracker(store, "BCAST PREFIX user: PREFIX cart:")
    other = store.open_session()
    for key in ("user:1", "cart:9", "other"):
        other.call(a(f"SET {key} v"))
    assert invalidated(pushes) == [[b"user:1"], [b"cart:9"]]
    _everything, all_pushes = tracker(store, "BCAST")
    other.call(a("SET anything v"))
    assert invalidated(all_pushes) == [[b"anything"]]


def test_optin_and_optout(store: EmbeddedStore) -> None:
    s, pushes = tracker(store, "OPTIN")
    other = store.open_session()
    s.call(a("GET plain"))
    assert s.call(a("CLIENT CACHING yes")) == b"OK"
    s.call(a("GET cached"))
    s.call(a("GET later"))  # CACHING held for one command only
    for key in ("plain", "cached", "later"):
        other.call(a(f"SET {key} v"))
    assert invalidated(pushes) == [[b"cached"]]
    t, pushes_t = tracker(store, "OPTOUT")
    t.call(a("CLIENT CACHING no"))
    t.call(a("GET skipped"))
    t.call(a("GET kept"))
    other.call(a("SET skipped v"))
    other.call(a("SET kept v"))
    assert invalidated(pushes_t) == [[b"kept"]]


def test_flush_and_expiry(store: EmbeddedStore) -> None:
    s, pushes = tracker(store)
    other = store.open_session()
    s.call(a("GET a"))
    s.call(a("GET b"))
    other.call(a("FLUSHALL"))
    assert invalidated(pushes) == [None]  # one null for everything, not one per key
    other.call(a("SET e v PX 100000"))
    s.call(a("GET x"))
    other.call(a("SET x v"))
    s.call(a("GET e"))  # (remembered)
    store.server.dbs[0]._dict[b"e"].expireat = 1.0  # as if its time had passed
    other.call(a("GET e"))  # finds it expired: gone
    assert invalidated(pushes)[1:] == [[b"x"], [b"e"]]


def test_transactions_remember_their_reads(store: EmbeddedStore) -> None:
    s, pushes = tracker(store)
    for line in ("MULTI", "GET m1", "GET m2", "EXEC"):
        s.call(a(line))
    store.open_session().call(a("MSET m1 1 m2 2"))
    assert invalidated(pushes) == [[b"m1"], [b"m2"]]


def test_trackinginfo_and_errors(store: EmbeddedStore) -> None:
    s = store.open_session()
    assert s.call(a("CLIENT TRACKINGINFO")) == {b"flags": [b"off"], b"redirect": -1,
                                                 b"prefixes": []}
    errors = {
        "CLIENT TRACKING maybe": "ERR syntax error",
        "CLIENT TRACKING on PREFIX a": "ERR PREFIX option requires BCAST mode to be enabled",
        "CLIENT TRACKING on BCAST OPTIN": "ERR OPTIN and OPTOUT are not compatible with BCAST",
        "CLIENT TRACKING on OPTIN OPTOUT": "ERR You can't specify both OPTIN mode and OPTOUT mode",
        "CLIENT TRACKING on BCAST PREFIX a PREFIX ab": (
            "ERR Prefix 'a' overlaps with another provided prefix 'ab'. Prefixes for a single "
            "client must not overlap."
        ),
        "CLIENT CACHING yes": (
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with "
            "OPTIN or OPTOUT mode enabled"
        ),
    }
    for line, text in errors.items():
        assert s.call(a(line)) == ErrorReply(text), line
    s.call(a("CLIENT TRACKING on BCAST PREFIX p"))
    info = s.call(a("CLIENT TRACKINGINFO"))
    assert (info[b"flags"], info[b"redirect"], info[b"prefixes"]) == ([b"on", b"bcast"], 0, [b"p"])
    assert s.call(a("CLIENT TRACKING on")).startswith("ERR You can't switch BCAST mode")
    s.call(a("CLIENT TRACKING on BCAST PREFIX q"))  # more prefixes for the same client
    assert s.call(a("CLIENT TRACKINGINFO"))[b"prefixes"] == [b"p", b"q"]


def test_a_closed_tracker_is_forgotten(store: EmbeddedStore) -> None:
    s, _pushes = tracker(store)
    s.call(a("GET k"))
    s.close()
    store.open_session().call(a("SET k v"))
    assert not store.tracking
