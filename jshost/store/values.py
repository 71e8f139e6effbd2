"""Stored values in a form of jshost's own, independent of any store.

DUMP / RESTORE on the embedded store (Redis' RDB value encoding, `jshost.store.rdb`) and the
embedded store's data file (`<dir>/data.jsonl`, `jshost.store.embedded.datafile`) are both made
from these.
A value is nothing but bytes, numbers and lists of them: reading one back can never run code
(the old data file held pickles, which could; see docs/security.md).

`to_json` / `from_json` are the data file's encoding: one JSON object per value, bytes in base64,
scores as text (`inf` and `-inf` are valid scores, and JSON has no infinity). `from_json` checks
every part of what it reads and raises `ValueError` on anything else.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from typing import Any

#: A stream entry id: (milliseconds, sequence number).
StreamId = tuple[int, int]

_U64 = 2**64 - 1


@dataclass(frozen=True)
class StringValue:
    data: bytes


@dataclass(frozen=True)
class ListValue:
    items: list[bytes]


@dataclass(frozen=True)
class SetValue:
    members: list[bytes]
    #: Members with a time to live (unix ms): an embedded-store extension Redis does not have.
    expiries: dict[bytes, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HashValue:
    fields: list[tuple[bytes, bytes]]
    #: Fields with a time to live (unix ms), set by HEXPIRE & co.
    expiries: dict[bytes, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ZSetValue:
    members: list[tuple[bytes, float]]


@dataclass(frozen=True)
class StreamConsumer:
    name: bytes
    seen_time: int  # unix ms of its last attempted interaction
    active_time: int  # unix ms of its last successful interaction


@dataclass(frozen=True)
class StreamPending:
    id: StreamId
    consumer: bytes
    delivery_time: int  # unix ms
    delivery_count: int


@dataclass(frozen=True)
class StreamGroup:
    name: bytes
    last_id: StreamId
    entries_read: int | None  # None: unknown (Redis' SCG_INVALID_ENTRIES_READ)
    consumers: list[StreamConsumer]
    pending: list[StreamPending]


@dataclass(frozen=True)
class StreamValue:
    entries: list[tuple[StreamId, list[bytes]]]  # id, [field, value, field, value, ...]
    last_id: StreamId
    entries_added: int
    max_deleted_id: StreamId
    groups: list[StreamGroup]


@dataclass(frozen=True)
class JsonValue:
    """A RedisJSON document (the embedded store's JSON.* commands): JSON data, no bytes."""

    document: Any


StoredValue = (
    StringValue | ListValue | SetValue | HashValue | ZSetValue | StreamValue | JsonValue
)

#: The name of each kind, as TYPE reports it (and as the data file spells it).
KIND_NAMES: dict[type, str] = {
    StringValue: "string",
    ListValue: "list",
    SetValue: "set",
    HashValue: "hash",
    ZSetValue: "zset",
    StreamValue: "stream",
    JsonValue: "ReJSON-RL",
}


def check_stream(stream: StreamValue) -> None:
    """`ValueError` unless `stream` is one a Redis could hold: ids strictly increasing and not
    past the last id given out, each entry with field-value pairs, counters that fit."""
    previous: StreamId | None = None
    for entry_id, parts in stream.entries:
        if previous is not None and entry_id <= previous:
            raise ValueError("stream entry ids must increase")
        if not parts or len(parts) % 2:
            raise ValueError("a stream entry needs field-value pairs")
        previous = entry_id
    if previous is not None and stream.last_id < previous:
        raise ValueError("a stream's last id is before its last entry")
    if stream.entries_added < len(stream.entries):
        raise ValueError("a stream's entries-added is below its length")
    names = [group.name for group in stream.groups]
    if len(set(names)) != len(names):
        raise ValueError("a stream has two consumer groups of the same name")


# --- the data file's JSON encoding ------------------------------------------------------------


def to_json(value: StoredValue) -> dict[str, Any]:
    """`value` as a JSON-ready object (see the module docstring)."""
    kind = KIND_NAMES[type(value)]
    if isinstance(value, StringValue):
        body: Any = _b64(value.data)
    elif isinstance(value, ListValue):
        body = [_b64(item) for item in value.items]
    elif isinstance(value, SetValue):
        body = [_b64(m) for m in value.members]
        if value.expiries:
            return {"type": kind, "value": body, "expiries": _expiries_json(value.expiries)}
    elif isinstance(value, HashValue):
        body = [[_b64(f), _b64(v)] for f, v in value.fields]
        if value.expiries:
            return {"type": kind, "value": body, "expiries": _expiries_json(value.expiries)}
    elif isinstance(value, ZSetValue):
        body = [[_b64(m), repr(float(s))] for m, s in value.members]
    elif isinstance(value, StreamValue):
        body = {
            "entries": [[_id_text(i), [_b64(p) for p in parts]] for i, parts in value.entries],
            "last_id": _id_text(value.last_id),
            "entries_added": value.entries_added,
            "max_deleted_id": _id_text(value.max_deleted_id),
            "groups": [_group_json(g) for g in value.groups],
        }
    else:
        body = value.document
    return {"type": kind, "value": body}


def from_json(data: Any) -> StoredValue:
    """The value `to_json` made; `ValueError` for anything that is not exactly that."""
    kind = _get(data, "type", str)
    body = data.get("value") if isinstance(data, dict) else None
    if kind == "string":
        return StringValue(_unb64(body))
    if kind == "list":
        return ListValue([_unb64(item) for item in _list(body)])
    if kind == "set":
        expiries = _expiries_from(data.get("expiries", {}))
        return SetValue([_unb64(m) for m in _list(body)], expiries)
    if kind == "hash":
        pairs = [_pair(p) for p in _list(body)]
        expiries = _expiries_from(data.get("expiries", {}))
        return HashValue([(_unb64(f), _unb64(v)) for f, v in pairs], expiries)
    if kind == "zset":
        return ZSetValue([(_unb64(m), _score(s)) for m, s in map(_pair, _list(body))])
    if kind == "stream":
        if not isinstance(body, dict):
            raise ValueError("a stream must be an object")
        entries = []
        for entry in _list(body.get("entries")):
            entry_id, parts = _pair(entry)
            entries.append((_id_from(entry_id), [_unb64(p) for p in _list(parts)]))
        stream = StreamValue(
            entries=entries,
            last_id=_id_from(body.get("last_id")),
            entries_added=_count(body.get("entries_added")),
            max_deleted_id=_id_from(body.get("max_deleted_id")),
            groups=[_group_from(g) for g in _list(body.get("groups"))],
        )
        check_stream(stream)
        return stream
    if kind == "ReJSON-RL":
        return JsonValue(body)
    raise ValueError(f"unknown value type {kind!r}")


def _group_json(group: StreamGroup) -> dict[str, Any]:
    return {
        "name": _b64(group.name),
        "last_id": _id_text(group.last_id),
        "entries_read": group.entries_read,
        "consumers": [[_b64(c.name), c.seen_time, c.active_time] for c in group.consumers],
        "pending": [[_id_text(p.id), _b64(p.consumer), p.delivery_time, p.delivery_count]
                    for p in group.pending],
    }


def _group_from(data: Any) -> StreamGroup:
    if not isinstance(data, dict):
        raise ValueError("a stream group must be an object")
    entries_read = data.get("entries_read")
    consumers = []
    for item in _list(data.get("consumers")):
        name, seen, active = _fixed(item, 3)
        consumers.append(StreamConsumer(_unb64(name), _count(seen), _count(active)))
    pending = []
    for item in _list(data.get("pending")):
        entry_id, consumer, when, count = _fixed(item, 4)
        pending.append(StreamPending(_id_from(entry_id), _unb64(consumer), _count(when),
                                     _count(count)))
    return StreamGroup(
        name=_unb64(data.get("name")),
        last_id=_id_from(data.get("last_id")),
        entries_read=None if entries_read is None else _count(entries_read),
        consumers=consumers,
        pending=pending,
    )


def _expiries_json(expiries: dict[bytes, int]) -> list[list[Any]]:
    return [[_b64(member), when] for member, when in expiries.items()]


def _expiries_from(data: Any) -> dict[bytes, int]:
    if data == {}:
        return {}
    return {_unb64(m): _count(when) for m, when in map(_pair, _list(data))}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64: {exc}") from None


def _id_text(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def _id_from(text: Any) -> StreamId:
    if not isinstance(text, str):
        raise ValueError("expected a stream id")
    ms, sep, seq = text.partition("-")
    if not (sep and ms.isdigit() and seq.isdigit()) or int(ms) > _U64 or int(seq) > _U64:
        raise ValueError(f"bad stream id {text!r}")
    return int(ms), int(seq)


def _score(text: Any) -> float:
    if not isinstance(text, str):
        raise ValueError("expected a score")
    score = float(text)
    if math.isnan(score):
        raise ValueError("a score cannot be NaN")
    return score


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value


def _pair(value: Any) -> tuple[Any, Any]:
    first, second = _fixed(value, 2)
    return first, second


def _fixed(value: Any, size: int) -> list[Any]:
    if not isinstance(value, list) or len(value) != size:
        raise ValueError(f"expected a list of {size}")
    return value


def _get(data: Any, name: str, kind: type) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get(name), kind):
        raise ValueError(f"expected an object with a {kind.__name__} {name!r}")
    return data[name]
