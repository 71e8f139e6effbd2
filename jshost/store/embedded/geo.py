"""The GEO commands of the embedded store, as Redis 7 has them (geohash.c, geohash_helper.c,
geo.c): a member's score is its 52-bit interleaved geohash, so ZSCORE, ZRANGE and DUMP/RESTORE
see what a real Redis has; positions, distances and hashes come out as Redis computes them; a
search walks the same nine geohash boxes in the same order, so unsorted results come in Redis'
order too. (fakeredis kept a base32 text as the score: less precise, and no number at all.)

`GeoCommands` overrides fakeredis' geo methods on the store's socket; fakeredis still parses
GEOSEARCH's options (its errors are Redis').
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

from fakeredis._command_args_parsing import Float, Int
from fakeredis._core._database import CommandItem
from fakeredis._helpers import SimpleError
from fakeredis.commands_mixins.geo_mixin import GeoCommandsMixin
from fakeredis.commands_mixins.sortedset_mixin import SortedSetCommandsMixin
from fakeredis.model import ZSet

from jshost.errors import GeoErrors

STEP_MAX = 26  # 52 bits
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LONG_MIN, LONG_MAX = -180.0, 180.0
EARTH_RADIUS = 6372797.560856  # meters, Redis' EARTH_RADIUS_IN_METERS
MERCATOR_MAX = 20037726.37
#: Meters per unit (Redis' extractUnitOrReply).
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
#: fakeredis' units per meter (its GEOSEARCH parser gives these) -> Redis' meters per unit.
_FAKEREDIS_CONV = {1: 1.0, 0.001: 1000.0, 3.28084: 0.3048, 0.000621371: 1609.34}
_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_ODD, _EVEN = 0xAAAAAAAAAAAAAAAA, 0x5555555555555555  # longitude bits, latitude bits


# -- geohash.c ----------------------------------------------------------------------------------


def _spread(value: int) -> int:
    """The 32 bits of `value` at the even positions of 64."""
    out = 0
    for bit in range(32):
        out |= ((value >> bit) & 1) << (2 * bit)
    return out


def _squash(value: int) -> int:
    """The even-position bits of `value`, packed."""
    out = 0
    for bit in range(32):
        out |= ((value >> (2 * bit)) & 1) << bit
    return out


def encode(longitude: float, latitude: float, step: int = STEP_MAX,
           lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX)) -> int:
    """geohashEncode: latitude bits at even positions, longitude bits at odd ones."""
    lat_offset = (latitude - lat_range[0]) / (lat_range[1] - lat_range[0])
    long_offset = (longitude - LONG_MIN) / (LONG_MAX - LONG_MIN)
    scale = 1 << step
    lat_bits = int(lat_offset * scale) & 0xFFFFFFFF  # C's conversion to uint32_t
    long_bits = int(long_offset * scale) & 0xFFFFFFFF
    return _spread(lat_bits) | (_spread(long_bits) << 1)


@dataclass(frozen=True, slots=True)
class Area:
    lat_min: float
    lat_max: float
    long_min: float
    long_max: float


def decode_area(bits: int, step: int = STEP_MAX) -> Area:
    """geohashDecode with Redis' coordinate ranges."""
    lat_index, long_index = _squash(bits), _squash(bits >> 1)
    cells = float(1 << step)
    lat_scale, long_scale = LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN
    return Area(
        LAT_MIN + (lat_index / cells) * lat_scale,
        LAT_MIN + ((lat_index + 1) / cells) * lat_scale,
        LONG_MIN + (long_index / cells) * long_scale,
        LONG_MIN + ((long_index + 1) / cells) * long_scale,
    )


def decode(score: float) -> tuple[float, float]:
    """A member's (longitude, latitude): the middle of its 52-bit cell, within the ranges."""
    area = decode_area(int(score) & ((1 << 52) - 1))
    longitude = min(LONG_MAX, max(LONG_MIN, (area.long_min + area.long_max) / 2))
    latitude = min(LAT_MAX, max(LAT_MIN, (area.lat_min + area.lat_max) / 2))
    return longitude, latitude


def geohash_text(score: float) -> bytes:
    """GEOHASH's 11 characters: the position re-encoded over latitudes -90..90, the standard
    geohash; the 11th character stands for 2 bits Redis does not have, so it is always '0'."""
    longitude, latitude = decode(score)
    bits = encode(longitude, latitude, STEP_MAX, (-90.0, 90.0))
    chars = [_BASE32[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10)]
    return ("".join(chars) + "0").encode()


def _move_x(bits: int, step: int, d: int) -> int:
    x, y = bits & _ODD, bits & _EVEN
    zz = _EVEN >> (64 - step * 2)
    x = x + (zz + 1) if d > 0 else (x | zz) - (zz + 1)
    return (x & (_ODD >> (64 - step * 2))) | y


def _move_y(bits: int, step: int, d: int) -> int:
    x, y = bits & _ODD, bits & _EVEN
    zz = _ODD >> (64 - step * 2)
    y = y + (zz + 1) if d > 0 else (y | zz) - (zz + 1)
    return x | (y & (_EVEN >> (64 - step * 2)))


def neighbors(bits: int, step: int) -> dict[str, int]:
    """geohashNeighbors: the eight boxes around `bits` at `step`."""
    def moved(dx: int, dy: int) -> int:
        out = _move_x(bits, step, dx) if dx else bits
        return _move_y(out, step, dy) if dy else out

    return {
        "north": moved(0, 1), "south": moved(0, -1), "east": moved(1, 0), "west": moved(-1, 0),
        "north_east": moved(1, 1), "north_west": moved(-1, 1),
        "south_east": moved(1, -1), "south_west": moved(-1, -1),
    }


# -- geohash_helper.c ---------------------------------------------------------------------------


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance: haversine on Redis' earth radius (meters)."""
    lon1r, lon2r = math.radians(lon1), math.radians(lon2)
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return EARTH_RADIUS * abs(math.radians(lat2) - math.radians(lat1))
    lat1r, lat2r = math.radians(lat1), math.radians(lat2)
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS * math.asin(math.sqrt(a))


@dataclass(frozen=True, slots=True)
class Shape:
    """What to search: around (longitude, latitude), a radius or a width x height box, in units
    of `conversion` meters."""

    longitude: float
    latitude: float
    conversion: float
    radius: float | None = None
    box: tuple[float, float] | None = None

    def bounds(self) -> tuple[float, float, float, float]:
        """geohashBoundingBox: (min long, min lat, max long, max lat)."""
        radius = self.radius or 0.0
        half_h = self.conversion * (radius if self.box is None else self.box[1] / 2)
        half_w = self.conversion * (radius if self.box is None else self.box[0] / 2)
        lat_delta = math.degrees(half_h / EARTH_RADIUS)
        top = math.degrees(half_w / EARTH_RADIUS / math.cos(math.radians(self.latitude + lat_delta)))
        bottom = math.degrees(
            half_w / EARTH_RADIUS / math.cos(math.radians(self.latitude - lat_delta))
        )
        long_delta = bottom if self.latitude < 0 else top
        return (self.longitude - long_delta, self.latitude - lat_delta,
                self.longitude + long_delta, self.latitude + lat_delta)

    def distance_if_inside(self, longitude: float, latitude: float) -> float | None:
        """The distance (meters) from the center, or None when the point is outside."""
        if self.box is None:
            assert self.radius is not None
            dist = distance(self.longitude, self.latitude, longitude, latitude)
            return None if dist > self.radius * self.conversion else dist
        width, height = (side * self.conversion for side in self.box)
        if EARTH_RADIUS * abs(math.radians(self.latitude) - math.radians(latitude)) > height / 2:
            return None
        if distance(longitude, latitude, self.longitude, latitude) > width / 2:
            return None
        return distance(self.longitude, self.latitude, longitude, latitude)


def _estimate_steps(range_meters: float, latitude: float) -> int:
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if latitude > 66 or latitude < -66:
        step -= 1
        if latitude > 80 or latitude < -80:
            step -= 1
    return max(1, min(26, step))


def search_boxes(shape: Shape) -> list[tuple[int, int]]:
    """geohashCalculateAreasByShapeWGS84: the (bits, step) boxes to walk, in Redis' order
    (center, N, S, E, W, NE, NW, SE, SW), the useless ones left out."""
    min_lon, min_lat, max_lon, max_lat = shape.bounds()
    if shape.box is None:
        assert shape.radius is not None
        reach = shape.radius
    else:
        reach = math.sqrt((shape.box[0] / 2) ** 2 + (shape.box[1] / 2) ** 2)
    step = _estimate_steps(reach * shape.conversion, shape.latitude)
    bits = encode(shape.longitude, shape.latitude, step)
    around = neighbors(bits, step)
    edges = {side: decode_area(around[side], step) for side in ("north", "south", "east", "west")}
    too_big = (edges["north"].lat_max < max_lat or edges["south"].lat_min > min_lat
               or edges["east"].long_max < max_lon or edges["west"].long_min > min_lon)
    if step > 1 and too_big:
        step -= 1
        bits = encode(shape.longitude, shape.latitude, step)
        around = neighbors(bits, step)
    area = decode_area(bits, step)
    useless: set[str] = set()
    if step >= 2:
        if area.lat_min < min_lat:
            useless |= {"south", "south_west", "south_east"}
        if area.lat_max > max_lat:
            useless |= {"north", "north_east", "north_west"}
        if area.long_min < min_lon:
            useless |= {"west", "south_west", "north_west"}
        if area.long_max > max_lon:
            useless |= {"east", "south_east", "north_east"}
    order = ("north", "south", "east", "west", "north_east", "north_west", "south_east",
             "south_west")
    boxes = [(bits, step)]
    boxes += [(around[side], step) if side not in useless else (0, 0) for side in order]
    return boxes


@dataclass(frozen=True, slots=True)
class Point:
    member: bytes
    score: float
    longitude: float
    latitude: float
    distance: float  # meters


def search(zset: ZSet, shape: Shape, limit: int = 0) -> list[Point]:
    """membersOfAllNeighbors: the members inside `shape`, box by box in score order (at most
    `limit` when it is not 0: ANY)."""
    found: list[Point] = []
    last: tuple[int, int] | None = None
    for i, (bits, step) in enumerate(search_boxes(shape)):
        if bits == 0 and step == 0:
            continue
        if last is not None and i and (bits, step) == last:
            continue  # huge radii: neighbours can be the same box
        if limit and len(found) >= limit:
            break
        shift = 52 - step * 2
        low, high = bits << shift, (bits + 1) << shift
        # (score, member) pairs with low <= score < high, in score order
        for score, member in zset._byscore.irange((low,), (high,), inclusive=(True, False)):
            longitude, latitude = decode(score)
            dist = shape.distance_if_inside(longitude, latitude)
            if dist is None:
                continue
            found.append(Point(member, score, longitude, latitude, dist))
            if limit and len(found) >= limit:
                break
        last = (bits, step) if i else last
    return found


# -- the commands (geo.c) -----------------------------------------------------------------------


@dataclass
class _Options:
    withdist: bool = False
    withhash: bool = False
    withcoord: bool = False
    count: int = 0
    any: bool = False
    sort: str = ""  # "", "asc" or "desc"
    store: bytes | None = None
    storedist: bool = False


def _unit(arg: bytes) -> float:
    unit = UNITS.get(arg.lower())
    if unit is None:
        raise SimpleError(GeoErrors.UNIT)
    return unit


def _radius_options(args: tuple[bytes, ...], read_only: bool) -> _Options:
    """GEORADIUS[BYMEMBER][_RO]'s options after the unit, as georadiusGeneric reads them."""
    options = _Options()
    i = 0
    while i < len(args):
        word, more = args[i].lower(), len(args) - i - 1
        if word == b"withdist":
            options.withdist = True
        elif word == b"withhash":
            options.withhash = True
        elif word == b"withcoord":
            options.withcoord = True
        elif word == b"any":
            options.any = True
        elif word in (b"asc", b"desc"):
            options.sort = word.decode()
        elif word == b"count" and more:
            options.count = Int.decode(args[i + 1])
            if options.count <= 0:
                raise SimpleError(GeoErrors.COUNT)
            i += 1
        elif word in (b"store", b"storedist") and more and not read_only:
            options.store, options.storedist = args[i + 1], word == b"storedist"
            i += 1
        else:
            raise SimpleError(GeoErrors.SYNTAX)
        i += 1
    if options.store is not None and (options.withdist or options.withhash or options.withcoord):
        raise SimpleError(GeoErrors.STORE_WITH)
    if options.any and not options.count:
        raise SimpleError(GeoErrors.ANY_COUNT)
    return options


class GeoCommands:
    """Mixin of the store's socket: replaces fakeredis' geo methods (same names)."""

    _db: Any

    def geoadd(self, key: CommandItem, *args: bytes) -> Any:
        flags: list[bytes] = []
        i = 0
        while i < len(args) and args[i].lower() in (b"nx", b"xx", b"ch"):
            flags.append(args[i])
            i += 1
        data = args[i:]
        lowered = {f.lower() for f in flags}
        if not data or len(data) % 3 or {b"nx", b"xx"} <= lowered:
            raise SimpleError(GeoErrors.SYNTAX)
        pairs: list[bytes] = []
        for j in range(0, len(data), 3):
            longitude, latitude = Float.decode(data[j]), Float.decode(data[j + 1])
            if not (LONG_MIN <= longitude <= LONG_MAX and LAT_MIN <= latitude <= LAT_MAX):
                raise SimpleError(GeoErrors.COORDINATES.format(longitude, latitude))
            pairs += [b"%d" % encode(longitude, latitude), data[j + 2]]
        return SortedSetCommandsMixin.zadd(self, key, *flags, *pairs)

    def geopos(self, key: CommandItem, *members: bytes) -> list[Any]:
        zset = key.value
        out: list[Any] = []
        for member in members:
            score = zset.get(member) if zset else None
            out.append(None if score is None else list(decode(score)))
        return out

    def geohash(self, key: CommandItem, *members: bytes) -> list[bytes | None]:
        zset = key.value
        scores = [zset.get(m) if zset else None for m in members]
        return [None if score is None else geohash_text(score) for score in scores]

    def geodist(self, key: CommandItem, m1: bytes, m2: bytes, *args: bytes) -> bytes | None:
        if len(args) > 1:
            raise SimpleError(GeoErrors.SYNTAX)
        unit = _unit(args[0]) if args else 1.0
        zset = key.value
        first, second = (zset.get(m1), zset.get(m2)) if zset else (None, None)
        if first is None or second is None:
            return None
        meters = distance(*decode(first), *decode(second))
        return b"%.4f" % (meters / unit)

    def _member_position(self, key: CommandItem, member: bytes) -> tuple[float, float]:
        """(latitude, longitude) of a member (fakeredis' GEOSEARCH parser calls this)."""
        score = key.value.get(member) if key.value else None
        if score is None:
            if key.value:
                raise SimpleError(GeoErrors.MEMBER)
            return 0.0, 0.0  # a missing key finds nothing, wherever the search is centred
        longitude, latitude = decode(score)
        return latitude, longitude

    # GEORADIUS, GEORADIUSBYMEMBER and their _RO forms (fakeredis' signatures call these).

    def _georadius(self, key: CommandItem, long: float, lat: float, radius: float,
                   *args: bytes) -> Any:
        return self._radius(key, long, lat, radius, args, read_only=False)

    def georadius_ro(self, key: CommandItem, long: float, lat: float, radius: float,
                     *args: bytes) -> Any:
        return self._radius(key, long, lat, radius, args, read_only=True)

    def georadiusbymember_ro(self, key: CommandItem, member: bytes, radius: float,
                             *args: bytes) -> Any:
        lat, long = self._member_position(key, member)
        return self._radius(key, long, lat, radius, args, read_only=True)

    def _radius(self, key: CommandItem, long: float, lat: float, radius: float,
                args: tuple[bytes, ...], read_only: bool) -> Any:
        if not (LONG_MIN <= long <= LONG_MAX and LAT_MIN <= lat <= LAT_MAX):
            raise SimpleError(GeoErrors.COORDINATES.format(long, lat))
        if radius < 0:
            raise SimpleError(GeoErrors.RADIUS)
        if not args:
            raise SimpleError(GeoErrors.SYNTAX)
        conversion = _unit(args[0])
        options = _radius_options(args[1:], read_only)
        shape = Shape(long, lat, conversion, radius=radius)
        return self._answer(key, shape, options)

    # GEOSEARCH / GEOSEARCHSTORE: fakeredis parses, these search and answer.

    def geosearch(self, key: CommandItem, *args: bytes) -> Any:
        parsed = GeoCommandsMixin._parse_geosearch_args(
            cast(Any, self), "GEOSEARCH", key, args, store=False
        )
        return self._answer(key, _shape_of(parsed), _options_of(parsed))

    def geosearchstore(self, dst: bytes, src: CommandItem, *args: bytes) -> Any:
        parsed = GeoCommandsMixin._parse_geosearch_args(
            cast(Any, self), "GEOSEARCHSTORE", src, args, store=True
        )
        options = _options_of(parsed)
        options.store, options.storedist = dst, parsed.storedist
        return self._answer(src, _shape_of(parsed), options)

    def _answer(self, key: CommandItem, shape: Shape, options: _Options) -> Any:
        points = search(key.value, shape, options.count if options.any else 0) if key else []
        sort = options.sort or ("asc" if options.count and not options.any else "")
        if sort:
            points.sort(key=lambda p: p.distance, reverse=sort == "desc")
        if options.count:
            points = points[: options.count]
        if options.store is not None:
            return self._store_points(options.store, points, shape, options.storedist)
        if not (options.withdist or options.withhash or options.withcoord):
            return [p.member for p in points]
        out = []
        for p in points:
            item: list[Any] = [p.member]
            if options.withdist:
                item.append(b"%.4f" % (p.distance / shape.conversion))
            if options.withhash:
                item.append(int(p.score))
            if options.withcoord:
                item.append([p.longitude, p.latitude])
            out.append(item)
        return out

    def _store_points(self, name: bytes, points: list[Point], shape: Shape, dist: bool) -> int:
        """STORE / STOREDIST: the points as a sorted set (none: the destination is deleted)."""
        target = CommandItem(name, self._db, item=self._db.get(name), default=ZSet())
        zset = ZSet()
        for p in points:
            zset.add(p.member, p.distance / shape.conversion if dist else p.score)
        target.value = zset
        target.writeback()
        return len(points)


def _shape_of(parsed: Any) -> Shape:
    conversion = _FAKEREDIS_CONV.get(parsed.conv, 1.0)
    if parsed.box is not None:
        return Shape(parsed.long, parsed.lat, conversion, box=parsed.box)
    return Shape(parsed.long, parsed.lat, conversion, radius=parsed.radius or 0.0)


def _options_of(parsed: Any) -> _Options:
    sort = "asc" if parsed.asc else "desc" if parsed.desc else ""
    return _Options(withdist=parsed.withdist, withhash=parsed.withhash,
                    withcoord=parsed.withcoord, count=parsed.count, any=parsed.count_any,
                    sort=sort)


__all__ = ["GeoCommands", "decode", "encode", "geohash_text", "search"]
