"""The embedded store's GEO commands (jshost.store.embedded.geo) answer exactly what a real
redis-server answers: the same commands go to both and the replies are compared, for random
points and searches (unsorted results included: the same boxes are walked in the same order)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from jshost.replies import ErrorReply
from jshost.store import EmbeddedSession, EmbeddedStore
from jshost.store.embedded.geo import decode, encode, geohash_text
from tests.redis_server import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")


@pytest.fixture(scope="module")
def real() -> Iterator[redis.Redis]:
    with RedisServer() as server:
        client = redis.Redis(port=server.port, protocol=3)
        yield client
        client.close()


@pytest.fixture
def s() -> EmbeddedSession:
    return EmbeddedStore().open_session()


def _plain(value: Any) -> Any:
    """Replies of both sides in one shape: lists, bytes, ints, floats; errors as text."""
    if isinstance(value, ErrorReply | redis.ResponseError):
        return ("error", str(value).removeprefix("ERR "))
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return value.encode()
    return value


def both(real: redis.Redis, s: EmbeddedSession, *args: Any) -> tuple[Any, Any]:
    words = [str(a).encode() if not isinstance(a, bytes) else a for a in args]
    try:
        theirs = real.execute_command(*words)
    except redis.ResponseError as exc:
        theirs = exc
    return _plain(s.call(words)), _plain(theirs)


def test_encoding_round_trip_and_geohash() -> None:
    bits = encode(2.1909389952632, 41.433791470673)
    assert bits == 3471609698139488  # what redis-server stores (ZSCORE)
    longitude, latitude = decode(float(bits))
    assert (round(longitude, 6), round(latitude, 6)) == (2.190938, 41.43379)
    assert geohash_text(float(bits)) == b"sp3e9yg3kd0"


def test_same_replies_as_redis(real: redis.Redis, s: EmbeddedSession) -> None:
    rng = random.Random(1234)
    real.delete("g", "dst")
    center = (13.361389, 38.115556)
    members = []
    for i in range(150):
        lon = round(center[0] + rng.uniform(-2, 2), 6)
        lat = round(center[1] + rng.uniform(-2, 2), 6)
        members += [lon, lat, f"m{i}"]
    assert both(real, s, "GEOADD", "g", *members) == (150, 150)
    for i in range(0, 150, 7):
        ours, theirs = both(real, s, "ZSCORE", "g", f"m{i}")
        assert float(ours) == float(theirs)
    checks = [
        ("GEOPOS", "g", "m1", "m2", "nope"),
        ("GEOHASH", "g", "m3", "m4", "nope"),
        ("GEODIST", "g", "m5", "m6"),
        ("GEODIST", "g", "m5", "m6", "km"),
        ("GEODIST", "g", "m5", "m6", "mi"),
        ("GEODIST", "g", "m5", "nope"),
        ("GEODIST", "g", "m5", "m6", "parsec"),
    ]
    for _ in range(25):
        lon = round(center[0] + rng.uniform(-1.5, 1.5), 4)
        lat = round(center[1] + rng.uniform(-1.5, 1.5), 4)
        radius = rng.choice([1, 5, 20, 50, 120])
        unit = rng.choice(["km", "m", "mi", "ft"])
        scale = {"km": 1, "m": 1000, "mi": 0.62, "ft": 3280}[unit]
        r = round(radius * scale, 2)
        member = f"m{rng.randrange(150)}"
        checks += [
            ("GEORADIUS", "g", lon, lat, r, unit),  # unsorted: Redis' box order
            ("GEORADIUS", "g", lon, lat, r, unit, "WITHDIST", "WITHHASH", "WITHCOORD", "ASC"),
            ("GEORADIUS", "g", lon, lat, r, unit, "COUNT", 3),
            ("GEORADIUS", "g", lon, lat, r, unit, "COUNT", 3, "ANY"),
            ("GEORADIUSBYMEMBER", "g", member, r, unit, "DESC"),
            ("GEORADIUS_RO", "g", lon, lat, r, unit, "WITHDIST"),
            ("GEOSEARCH", "g", "FROMLONLAT", lon, lat, "BYRADIUS", r, unit),
            ("GEOSEARCH", "g", "FROMMEMBER", member, "BYBOX", r, r / 2, unit, "WITHCOORD"),
            ("GEOSEARCH", "g", "FROMLONLAT", lon, lat, "BYBOX", r * 2, r, unit, "ASC",
             "WITHDIST"),
            ("GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", lon, lat, "BYRADIUS", r, unit,
             "STOREDIST"),
            ("ZRANGE", "dst", 0, -1, "WITHSCORES"),
            ("GEORADIUS", "g", lon, lat, r, unit, "STORE", "dst"),
            ("ZRANGE", "dst", 0, -1, "WITHSCORES"),
        ]
    checks += [
        ("GEORADIUS", "g", 13.36, 38.11, 10, "km", "STORE", "dst", "WITHDIST"),
        ("GEORADIUS", "g", 13.36, 38.11, 10, "km", "ANY"),
        ("GEORADIUS", "g", 13.36, 38.11, -1, "km"),
        ("GEORADIUS", "g", 200, 38.11, 10, "km"),
        ("GEORADIUSBYMEMBER", "g", "nope", 10, "km"),
        ("GEORADIUS", "missing", 13.36, 38.11, 10, "km"),
        ("GEORADIUS", "missing", 13.36, 38.11, 10, "km", "STORE", "dst"),
        ("EXISTS", "dst"),
        ("GEORADIUS", "g", 0, 0, 10000, "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", 13, 38, "BYRADIUS", 6000, "km", "COUNT", 10),
    ]
    for check in checks:
        ours, theirs = both(real, s, *check)
        assert ours == theirs, check


def test_huge_and_polar_searches(real: redis.Redis, s: EmbeddedSession) -> None:
    real.delete("w")
    rng = random.Random(99)
    members = []
    for i in range(200):
        members += [round(rng.uniform(-180, 180), 5), round(rng.uniform(-85, 85), 5), f"p{i}"]
    both(real, s, "GEOADD", "w", *members)
    for lon, lat, radius in [(0, 0, 5000), (170, 84, 800), (-179.9, -84.9, 2000),
                             (0, 70, 3000), (100, -30, 20000)]:
        ours, theirs = both(real, s, "GEORADIUS", "w", lon, lat, radius, "km")
        assert ours == theirs, (lon, lat, radius)
