"""Redis' DUMP payload: one value in the RDB encoding, the way DUMP and RESTORE carry it.

A payload is ``<type byte> <value> <RDB version: 2 bytes LE> <CRC64 (jones) of all that: 8 LE>``
(Redis' `createDumpPayload` / `verifyDumpPayload`). The embedded store's DUMP and RESTORE use
this module instead of fakeredis' own, which pickled the value and so let any client run code
(docs/security.md).

* `dump(value)` writes the simplest encodings every Redis since 7.0 reads: a raw string; a list,
  set and hash as plain lengths and strings; a sorted set with binary scores (`ZSET_2`); a stream
  as listpacks (`STREAM_LISTPACKS_2`, RDB 10, without the 7.2 "active time" of consumers).
* `load(payload)` reads what Redis 2.6 to 7.2 write (RDB version up to 11): every string
  encoding (integers, LZF), lists (plain, ziplist, quicklist, quicklist 2), sets (plain, intset,
  listpack), sorted sets (text and binary scores, ziplist, listpack), hashes (plain, ziplist,
  listpack) and streams (all three listpack layouts).
* Refused with `RdbError`: module values (RedisJSON, ...), zipmap hashes (Redis < 2.6), a
  version newer than 11, a wrong checksum, and anything malformed. Nothing here trusts a length
  it reads: every one is checked against the bytes that are there.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator

import anycrc  # type: ignore[import-untyped]

from jshost.errors import DumpErrors
from jshost.store.values import (
    KIND_NAMES,
    HashValue,
    ListValue,
    SetValue,
    StoredValue,
    StreamConsumer,
    StreamGroup,
    StreamId,
    StreamPending,
    StreamValue,
    StringValue,
    ZSetValue,
    check_stream,
)

#: The newest RDB version RESTORE accepts (Redis 7.2's).
RDB_VERSION = 11

# Object types (rdb.h).
T_STRING, T_LIST, T_SET, T_ZSET, T_HASH, T_ZSET_2 = 0, 1, 2, 3, 4, 5
T_MODULE_PRE_GA, T_MODULE_2 = 6, 7
T_HASH_ZIPMAP, T_LIST_ZIPLIST, T_SET_INTSET, T_ZSET_ZIPLIST, T_HASH_ZIPLIST = 9, 10, 11, 12, 13
T_LIST_QUICKLIST, T_STREAM_LISTPACKS, T_HASH_LISTPACK, T_ZSET_LISTPACK = 14, 15, 16, 17
T_LIST_QUICKLIST_2, T_STREAM_LISTPACKS_2, T_SET_LISTPACK, T_STREAM_LISTPACKS_3 = 18, 19, 20, 21

#: The RDB version `dump` writes for each type it writes: the oldest that reads it.
_WRITTEN_VERSION = {T_STRING: 9, T_LIST: 9, T_SET: 9, T_HASH: 9, T_ZSET_2: 9,
                    T_STREAM_LISTPACKS_2: 10}

_CRC64 = anycrc.Model("CRC64-REDIS")
_U64 = 2**64 - 1
_QUICKLIST_PLAIN, _QUICKLIST_PACKED = 1, 2
_STREAM_DELETED, _STREAM_SAMEFIELDS = 1, 2
_STREAM_NODE_ENTRIES = 100  # entries per listpack node (Redis' stream-node-max-entries)


class RdbError(ValueError):
    """A payload RESTORE must refuse; `str()` is the error text for the client."""


def checksum(data: bytes) -> bytes:
    """The CRC64 (jones, as Redis computes it) of `data`, as DUMP appends it: 8 bytes LE."""
    return struct.pack("<Q", _CRC64.calc(data))


# --- DUMP ---------------------------------------------------------------------------------------


def dump(value: StoredValue) -> bytes:
    """The DUMP payload of `value`; `RdbError` for a value Redis' RDB cannot carry."""
    out = bytearray()
    kind = _write_value(out, value)
    out += struct.pack("<H", _WRITTEN_VERSION[kind])
    return bytes(out) + checksum(bytes(out))


def _write_value(out: bytearray, value: StoredValue) -> int:
    if isinstance(value, StringValue):
        out.append(T_STRING)
        _write_string(out, value.data)
        return T_STRING
    if isinstance(value, ListValue):
        out.append(T_LIST)
        _write_strings(out, value.items)
        return T_LIST
    if isinstance(value, SetValue):
        if value.expiries:
            raise RdbError(DumpErrors.MEMBER_TTL)
        out.append(T_SET)
        _write_strings(out, value.members)
        return T_SET
    if isinstance(value, HashValue):
        if value.expiries:
            raise RdbError(DumpErrors.MEMBER_TTL)
        out.append(T_HASH)
        _write_length(out, len(value.fields))
        for name, data in value.fields:
            _write_string(out, name)
            _write_string(out, data)
        return T_HASH
    if isinstance(value, ZSetValue):
        out.append(T_ZSET_2)
        _write_length(out, len(value.members))
        for member, score in value.members:
            _write_string(out, member)
            out += struct.pack("<d", score)
        return T_ZSET_2
    if isinstance(value, StreamValue):
        out.append(T_STREAM_LISTPACKS_2)
        _write_stream(out, value)
        return T_STREAM_LISTPACKS_2
    raise RdbError(DumpErrors.UNSUPPORTED_TYPE.format(kind=KIND_NAMES[type(value)]))


def _write_length(out: bytearray, length: int) -> None:
    if length < 1 << 6:
        out.append(length)
    elif length < 1 << 14:
        out += bytes((0x40 | length >> 8, length & 0xFF))
    elif length <= 0xFFFFFFFF:
        out.append(0x80)
        out += struct.pack(">I", length)
    else:
        out.append(0x81)
        out += struct.pack(">Q", length)


def _write_string(out: bytearray, data: bytes) -> None:
    _write_length(out, len(data))
    out += data


def _write_strings(out: bytearray, items: list[bytes]) -> None:
    _write_length(out, len(items))
    for item in items:
        _write_string(out, item)


def _write_stream(out: bytearray, stream: StreamValue) -> None:
    entries = stream.entries
    nodes = [entries[i:i + _STREAM_NODE_ENTRIES]
             for i in range(0, len(entries), _STREAM_NODE_ENTRIES)]
    _write_length(out, len(nodes))
    for node in nodes:
        master = node[0][0]
        _write_string(out, struct.pack(">QQ", *master))
        _write_string(out, _stream_listpack(master, node))
    first = entries[0][0] if entries else (0, 0)
    for number in (len(entries), *stream.last_id, *first, *stream.max_deleted_id,
                   stream.entries_added):
        _write_length(out, number)
    _write_length(out, len(stream.groups))
    for group in stream.groups:
        _write_string(out, group.name)
        _write_length(out, group.last_id[0])
        _write_length(out, group.last_id[1])
        _write_length(out, _U64 if group.entries_read is None else group.entries_read)
        consumers = {c.name: c for c in group.consumers}
        owned: dict[bytes, list[StreamId]] = {name: [] for name in consumers}
        _write_length(out, len(group.pending))
        for pending in group.pending:
            out += struct.pack(">QQ", *pending.id)
            out += struct.pack("<q", pending.delivery_time)
            _write_length(out, pending.delivery_count)
            if pending.consumer not in consumers:  # every pending entry has an owner in Redis
                consumers[pending.consumer] = StreamConsumer(
                    pending.consumer, pending.delivery_time, pending.delivery_time)
                owned[pending.consumer] = []
            owned[pending.consumer].append(pending.id)
        _write_length(out, len(consumers))
        for name, consumer in consumers.items():
            _write_string(out, name)
            out += struct.pack("<q", consumer.seen_time)
            _write_length(out, len(owned[name]))
            for entry_id in owned[name]:
                out += struct.pack(">QQ", *entry_id)


def _stream_listpack(master: StreamId, node: list[tuple[StreamId, list[bytes]]]) -> bytes:
    """One stream node: the master entry (counts, the first entry's field names), then every
    entry relative to it (t_stream.c's layout), each field name written in full unless the
    entry has the master's names."""
    names = node[0][1][0::2]
    elements: list[bytes | int] = [len(node), 0, len(names), *names, 0]
    for (ms, seq), parts in node:
        fields, values = parts[0::2], parts[1::2]
        delta = [_int64(ms - master[0]), _int64(seq - master[1])]
        if fields == names:
            elements += [_STREAM_SAMEFIELDS, *delta, *values, len(values) + 3]
        else:
            elements += [0, *delta, len(fields), *parts, 2 * len(fields) + 4]
    return _listpack(elements)


def _listpack(elements: list[bytes | int]) -> bytes:
    body = bytearray()
    for element in elements:
        entry = _lp_int(element) if isinstance(element, int) else _lp_string(element)
        body += entry
        body += _lp_backlen(len(entry))
    total = 6 + len(body) + 1
    count = min(len(elements), 0xFFFF)  # 0xFFFF: "unknown", counted when read
    return struct.pack("<IH", total, count) + bytes(body) + b"\xff"


def _lp_int(value: int) -> bytes:
    if 0 <= value <= 127:
        return bytes((value,))
    if -4096 <= value <= 4095:
        value &= 0x1FFF
        return bytes((0xC0 | value >> 8, value & 0xFF))
    for tag, size in ((0xF1, 2), (0xF2, 3), (0xF3, 4), (0xF4, 8)):
        if -(1 << (8 * size - 1)) <= value < 1 << (8 * size - 1):
            return bytes((tag,)) + value.to_bytes(size, "little", signed=True)
    raise RdbError(DumpErrors.BAD_DATA)


def _int64(delta: int) -> int:
    """An id part relative to the node's master id, as Redis stores it: the uint64 difference
    read as an int64 (the reader adds it back modulo 2^64)."""
    delta &= _U64
    return delta - (1 << 64) if delta >= 1 << 63 else delta


def _lp_string(data: bytes) -> bytes:
    size = len(data)
    if size < 64:
        return bytes((0x80 | size,)) + data
    if size < 4096:
        return bytes((0xE0 | size >> 8, size & 0xFF)) + data
    return b"\xf0" + struct.pack("<I", size) + data


def _lp_backlen(length: int) -> bytes:
    """An entry's length, written after it so the listpack can be walked backwards
    (`lpEncodeBacklen`: 7 bits a byte, most significant first, every byte but the first
    marked with the 128 bit; the sizes switch where Redis switches them)."""
    if length <= 127:
        return bytes((length,))
    size = 2 if length < 16383 else 3 if length < 2097151 else 4 if length < 268435455 else 5
    groups = [(length >> (7 * i)) & 127 for i in reversed(range(size))]
    return bytes([groups[0], *(g | 128 for g in groups[1:])])


# --- RESTORE ------------------------------------------------------------------------------------


def load(payload: bytes) -> StoredValue:
    """The value in a DUMP payload; `RdbError` (with Redis' text where Redis has one)."""
    if len(payload) < 10:
        raise RdbError(DumpErrors.VERSION_OR_CHECKSUM)
    body, footer = payload[:-8], payload[-8:]
    version = struct.unpack("<H", body[-2:])[0]
    if version > RDB_VERSION or checksum(body) != footer:
        raise RdbError(DumpErrors.VERSION_OR_CHECKSUM)
    reader = _Reader(body[:-2])
    try:
        value = reader.value()
    except (IndexError, struct.error, ValueError, OverflowError) as exc:
        if isinstance(exc, RdbError):
            raise
        raise RdbError(DumpErrors.BAD_DATA) from None
    if reader.pos != len(reader.data):
        raise RdbError(DumpErrors.BAD_DATA)
    return value


class _Reader:
    """Reads one value from the payload's body (rdb.c's `rdbLoadObject`)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    # -- primitives ---------------------------------------------------------------------------

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise RdbError(DumpErrors.BAD_DATA)
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> tuple[int, bool]:
        """A length, and whether it is a special string encoding instead."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return (first & 0x3F) << 8 | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return struct.unpack(">I", self.take(4))[0], False
        if first == 0x81:
            return struct.unpack(">Q", self.take(8))[0], False
        raise RdbError(DumpErrors.BAD_DATA)

    def count(self) -> int:
        """A length that counts what follows (each thing takes at least one byte)."""
        number, encoded = self.length()
        if encoded or number > len(self.data) - self.pos:
            raise RdbError(DumpErrors.BAD_DATA)
        return number

    def number(self) -> int:
        number, encoded = self.length()
        if encoded:
            raise RdbError(DumpErrors.BAD_DATA)
        return number

    def string(self) -> bytes:
        number, encoded = self.length()
        if not encoded:
            return self.take(number)
        if number == 0:
            return b"%d" % struct.unpack("<b", self.take(1))[0]
        if number == 1:
            return b"%d" % struct.unpack("<h", self.take(2))[0]
        if number == 2:
            return b"%d" % struct.unpack("<i", self.take(4))[0]
        if number == 3:
            compressed_size = self.number()
            size = self.number()
            return lzf_decompress(self.take(compressed_size), size)
        raise RdbError(DumpErrors.BAD_DATA)

    def millis(self) -> int:
        (millis,) = struct.unpack("<q", self.take(8))
        return int(millis)

    def raw_id(self) -> StreamId:
        ms, seq = struct.unpack(">QQ", self.take(16))
        return ms, seq

    def text_double(self) -> float:
        size = self.byte()
        if size == 253:
            raise RdbError(DumpErrors.BAD_DATA)  # NaN: not a valid score
        if size == 254:
            return math.inf
        if size == 255:
            return -math.inf
        return _score(float(self.take(size).decode("ascii")))

    # -- values -------------------------------------------------------------------------------

    def value(self) -> StoredValue:
        kind = self.byte()
        reader = _TYPES.get(kind)
        if reader is None:
            if kind in (T_MODULE_PRE_GA, T_MODULE_2):
                raise RdbError(DumpErrors.UNSUPPORTED_TYPE.format(kind="module value"))
            if kind == T_HASH_ZIPMAP:
                raise RdbError(DumpErrors.UNSUPPORTED_TYPE.format(kind="zipmap hash"))
            raise RdbError(DumpErrors.BAD_DATA)
        value = reader(self)
        if not isinstance(value, (StringValue, StreamValue)) and not _size(value):
            raise RdbError(DumpErrors.BAD_DATA)  # Redis refuses empty keys
        return value

    def string_value(self) -> StoredValue:
        return StringValue(self.string())

    def list_plain(self) -> StoredValue:
        return ListValue([self.string() for _ in range(self.count())])

    def list_ziplist(self) -> StoredValue:
        return ListValue(_text_all(ziplist(self.string())))

    def list_quicklist(self) -> StoredValue:
        items: list[bytes] = []
        for _ in range(self.count()):
            items += _text_all(ziplist(self.string()))
        return ListValue(items)

    def list_quicklist_2(self) -> StoredValue:
        items: list[bytes] = []
        for _ in range(self.count()):
            container = self.number()
            node = self.string()
            if container == _QUICKLIST_PLAIN:
                items.append(node)
            elif container == _QUICKLIST_PACKED:
                items += _text_all(listpack(node))
            else:
                raise RdbError(DumpErrors.BAD_DATA)
        return ListValue(items)

    def set_plain(self) -> StoredValue:
        return SetValue(_unique([self.string() for _ in range(self.count())]))

    def set_intset(self) -> StoredValue:
        return SetValue(_unique([b"%d" % n for n in intset(self.string())]))

    def set_listpack(self) -> StoredValue:
        return SetValue(_unique(_text_all(listpack(self.string()))))

    def zset_text(self) -> StoredValue:
        return ZSetValue([(self.string(), self.text_double()) for _ in range(self.count())])

    def zset_binary(self) -> StoredValue:
        return ZSetValue([(self.string(), _score(struct.unpack("<d", self.take(8))[0]))
                          for _ in range(self.count())])

    def zset_packed(self, parse: Callable[[bytes], list[bytes | int]]) -> StoredValue:
        items = parse(self.string())
        if len(items) % 2:
            raise RdbError(DumpErrors.BAD_DATA)
        return ZSetValue([(_text(m), _score(float(_text(s))))
                          for m, s in zip(items[0::2], items[1::2])])

    def hash_plain(self) -> StoredValue:
        return HashValue([(self.string(), self.string()) for _ in range(self.count())])

    def hash_packed(self, parse: Callable[[bytes], list[bytes | int]]) -> StoredValue:
        items = _text_all(parse(self.string()))
        if len(items) % 2:
            raise RdbError(DumpErrors.BAD_DATA)
        return HashValue(list(zip(items[0::2], items[1::2])))

    def stream(self, version: int) -> StoredValue:
        entries: list[tuple[StreamId, list[bytes]]] = []
        for _ in range(self.count()):
            key = self.string()
            if len(key) != 16:
                raise RdbError(DumpErrors.BAD_DATA)
            master = struct.unpack(">QQ", key)
            entries += _stream_node(master, listpack(self.string()))
        entries.sort(key=lambda entry: entry[0])
        self.number()  # the length: the entries say it
        last_id = (self.number(), self.number())
        max_deleted: StreamId = (0, 0)
        entries_added = len(entries)
        if version >= 2:
            self.number(), self.number()  # the first id: the entries say it
            max_deleted = (self.number(), self.number())
            entries_added = self.number()
        groups = [self.stream_group(version) for _ in range(self.count())]
        stream = StreamValue(entries, last_id, entries_added, max_deleted, groups)
        check_stream(stream)  # (a ValueError: "Bad data format")
        return stream

    def stream_group(self, version: int) -> StreamGroup:
        name = self.string()
        last_id = (self.number(), self.number())
        entries_read: int | None = None
        if version >= 2:
            read = self.number()
            entries_read = None if read >= 2**63 else read  # -1 (unknown) saved unsigned
        pel: dict[StreamId, tuple[int, int]] = {}
        for _ in range(self.count()):
            entry_id = self.raw_id()
            pel[entry_id] = (self.millis(), self.number())
        consumers = []
        pending = []
        for _ in range(self.count()):
            consumer = self.string()
            seen = self.millis()
            active = self.millis() if version >= 3 else seen
            consumers.append(StreamConsumer(consumer, seen, active))
            for _ in range(self.count()):
                entry_id = self.raw_id()
                if entry_id not in pel:
                    raise RdbError(DumpErrors.BAD_DATA)  # not in the group's PEL
                when, deliveries = pel.pop(entry_id)
                pending.append(StreamPending(entry_id, consumer, when, deliveries))
        if pel:
            raise RdbError(DumpErrors.BAD_DATA)  # pending entries nobody owns
        pending.sort(key=lambda p: p.id)
        return StreamGroup(name, last_id, entries_read, consumers, pending)


_TYPES: dict[int, Callable[[_Reader], StoredValue]] = {
    T_STRING: _Reader.string_value,
    T_LIST: _Reader.list_plain,
    T_LIST_ZIPLIST: _Reader.list_ziplist,
    T_LIST_QUICKLIST: _Reader.list_quicklist,
    T_LIST_QUICKLIST_2: _Reader.list_quicklist_2,
    T_SET: _Reader.set_plain,
    T_SET_INTSET: _Reader.set_intset,
    T_SET_LISTPACK: _Reader.set_listpack,
    T_ZSET: _Reader.zset_text,
    T_ZSET_2: _Reader.zset_binary,
    T_ZSET_ZIPLIST: lambda r: r.zset_packed(ziplist),
    T_ZSET_LISTPACK: lambda r: r.zset_packed(listpack),
    T_HASH: _Reader.hash_plain,
    T_HASH_ZIPLIST: lambda r: r.hash_packed(ziplist),
    T_HASH_LISTPACK: lambda r: r.hash_packed(listpack),
    T_STREAM_LISTPACKS: lambda r: r.stream(1),
    T_STREAM_LISTPACKS_2: lambda r: r.stream(2),
    T_STREAM_LISTPACKS_3: lambda r: r.stream(3),
}


def _stream_node(master: tuple[int, int],
                 items: list[bytes | int]) -> Iterator[tuple[StreamId, list[bytes]]]:
    """The live entries of one stream listpack (see `_stream_listpack`)."""
    it = iter(items)

    def integer() -> int:
        item = next(it)
        return item if isinstance(item, int) else int(item)

    try:
        live, deleted, field_count = integer(), integer(), integer()
        names = [_text(next(it)) for _ in range(field_count)]
        if integer() != 0:
            raise RdbError(DumpErrors.BAD_DATA)
        entries = []
        for _ in range(live + deleted):
            flags = integer()
            entry_id = ((master[0] + integer()) & _U64, (master[1] + integer()) & _U64)
            if flags & _STREAM_SAMEFIELDS:
                parts = [p for name in names for p in (name, _text(next(it)))]
            else:
                count = integer()
                parts = [_text(next(it)) for _ in range(2 * count)]
            integer()  # lp-count
            if not flags & _STREAM_DELETED:
                entries.append((entry_id, parts))
        if next(it, None) is not None:
            raise RdbError(DumpErrors.BAD_DATA)
    except StopIteration:
        raise RdbError(DumpErrors.BAD_DATA) from None
    if len(entries) != live:
        raise RdbError(DumpErrors.BAD_DATA)
    return iter(entries)


# --- compact encodings ----------------------------------------------------------------------


def listpack(blob: bytes) -> list[bytes | int]:
    """The elements of a listpack (listpack.c): strings as bytes, integers as ints."""
    if len(blob) < 7 or struct.unpack("<I", blob[:4])[0] != len(blob) or blob[-1] != 0xFF:
        raise RdbError(DumpErrors.BAD_DATA)
    items: list[bytes | int] = []
    pos, end = 6, len(blob) - 1
    while pos < end:
        first = blob[pos]
        if first < 0x80:
            value: bytes | int = first
            size = 1
        elif first < 0xC0:
            length = first & 0x3F
            value, size = blob[pos + 1:pos + 1 + length], 1 + length
        elif first < 0xE0:
            raw = ((first & 0x1F) << 8) | blob[pos + 1]
            value, size = raw - (1 << 13) if raw >= 1 << 12 else raw, 2
        elif first < 0xF0:
            length = ((first & 0x0F) << 8) | blob[pos + 1]
            value, size = blob[pos + 2:pos + 2 + length], 2 + length
        elif first == 0xF0:
            length = struct.unpack("<I", blob[pos + 1:pos + 5])[0]
            value, size = blob[pos + 5:pos + 5 + length], 5 + length
        elif 0xF1 <= first <= 0xF4:
            width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}[first]
            value = int.from_bytes(blob[pos + 1:pos + 1 + width], "little", signed=True)
            size = 1 + width
        else:
            raise RdbError(DumpErrors.BAD_DATA)
        if pos + size > end:
            raise RdbError(DumpErrors.BAD_DATA)
        items.append(value)
        pos += size + len(_lp_backlen(size))
    if pos != end:
        raise RdbError(DumpErrors.BAD_DATA)
    return items


def ziplist(blob: bytes) -> list[bytes | int]:
    """The elements of a ziplist (ziplist.c, Redis < 7)."""
    if len(blob) < 11 or struct.unpack("<I", blob[:4])[0] != len(blob) or blob[-1] != 0xFF:
        raise RdbError(DumpErrors.BAD_DATA)
    items: list[bytes | int] = []
    pos, end = 10, len(blob) - 1
    while pos < end:
        pos += 5 if blob[pos] == 0xFE else 1  # the previous entry's length
        first = blob[pos]
        kind = first >> 6
        if kind == 0:
            length, pos = first & 0x3F, pos + 1
        elif kind == 1:
            length, pos = ((first & 0x3F) << 8) | blob[pos + 1], pos + 2
        elif kind == 2:
            length, pos = struct.unpack(">I", blob[pos + 1:pos + 5])[0], pos + 5
        else:
            length = -1
        if length >= 0:
            value: bytes | int = blob[pos:pos + length]
            pos += length
        elif first in _ZIPLIST_INTS:
            fmt, width = _ZIPLIST_INTS[first]
            value = struct.unpack(fmt, blob[pos + 1:pos + 1 + width])[0]
            pos += 1 + width
        elif first == 0xF0:  # 24-bit
            value = int.from_bytes(blob[pos + 1:pos + 4], "little", signed=True)
            pos += 4
        elif 0xF1 <= first <= 0xFD:
            value, pos = (first & 0x0F) - 1, pos + 1
        else:
            raise RdbError(DumpErrors.BAD_DATA)
        if pos > end:
            raise RdbError(DumpErrors.BAD_DATA)
        items.append(value)
    return items


_ZIPLIST_INTS = {0xC0: ("<h", 2), 0xD0: ("<i", 4), 0xE0: ("<q", 8), 0xFE: ("<b", 1)}


def intset(blob: bytes) -> list[int]:
    """The members of an intset (intset.c)."""
    if len(blob) < 8:
        raise RdbError(DumpErrors.BAD_DATA)
    width, count = struct.unpack("<II", blob[:8])
    fmt = {2: "h", 4: "i", 8: "q"}.get(width)
    if fmt is None or len(blob) != 8 + width * count:
        raise RdbError(DumpErrors.BAD_DATA)
    return list(struct.unpack(f"<{count}{fmt}", blob[8:]))


def lzf_decompress(data: bytes, size: int) -> bytes:
    """LZF (lzf_d.c), as Redis compresses long strings; the result must be `size` bytes. (A
    loop step per literal run or back reference: the hot path of restoring long strings.)"""
    out = bytearray()
    pos, end = 0, len(data)
    while pos < end:
        ctrl = data[pos]
        if ctrl < 32:  # a literal run of ctrl + 1 bytes (no longer than the input: no check)
            following = pos + ctrl + 2
            out += data[pos + 1:following]
            pos = following
            continue
        length = ctrl >> 5  # a back reference
        if length == 7:
            pos += 1
            length += data[pos] if pos < end else size  # (cut short: refused below)
        offset = ((ctrl & 0x1F) << 8 | (data[pos + 1] if pos + 1 < end else 0)) + 1
        pos += 2
        length += 2
        start = len(out) - offset
        if start < 0 or pos > end or len(out) + length > size:  # (a reference amplifies)
            raise RdbError(DumpErrors.BAD_DATA)
        if offset >= length:
            out += out[start:start + length]
        else:  # overlapping: the last `offset` bytes repeat
            out += (out[start:] * (length // offset + 1))[:length]
    if pos != end or len(out) != size:
        raise RdbError(DumpErrors.BAD_DATA)
    return bytes(out)


# --- helpers ----------------------------------------------------------------------------------


def _text(item: bytes | int) -> bytes:
    return b"%d" % item if isinstance(item, int) else item


def _text_all(items: list[bytes | int]) -> list[bytes]:
    return [_text(item) for item in items]


def _unique(members: list[bytes]) -> list[bytes]:
    if len(set(members)) != len(members):
        raise RdbError(DumpErrors.BAD_DATA)  # Redis refuses duplicate set members
    return members


def _score(score: float) -> float:
    if math.isnan(score):
        raise RdbError(DumpErrors.BAD_DATA)
    return score


def _size(value: StoredValue) -> int:
    if isinstance(value, ListValue):
        return len(value.items)
    if isinstance(value, (SetValue, ZSetValue)):
        return len(value.members)
    if isinstance(value, HashValue):
        return len(value.fields)
    return 1
