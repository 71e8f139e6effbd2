"""The embedded store's values (fakeredis' objects) to and from `jshost.store.values`.

Part of the embedded store (`jshost.store.embedded`), and like it pinned to fakeredis 2.41.0:
what each Redis type is in fakeredis, and the fields of its stream model (`XStream._ids`,
`._values_dict`, `._last_id`, `._entries_added`, `._max_deleted_id`, `._groups`;
`StreamGroup.consumers` / `.pel`; `StreamConsumerInfo.last_attempt` / `.last_success` /
`.pending`), of its hashes' and sets' member expiries (`Hash._expirations`,
`ExpiringMembersSet._values`). The round-trip tests of every type fail when they change.

RedisJSON documents are Python data in fakeredis (a dict, a str, a number, or a list of
non-bytes); a list of bytes is a Redis list. Other module values (time series, top-k,
t-digest) have no form here: `UnsupportedValue`.
"""

from __future__ import annotations

from typing import Any

from fakeredis.model import ExpiringMembersSet, Hash, XStream, ZSet
from fakeredis.model._stream import PelEntry, StreamConsumerInfo, StreamEntryKey

from jshost.store.values import (
    HashValue,
    JsonValue,
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

_JSON_SCALARS = (dict, str, int, float, bool)


class UnsupportedValue(TypeError):
    """A value of a type jshost cannot write out; `kind` names it."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def to_stored(value: Any) -> StoredValue:
    """What a fakeredis value holds, as a `StoredValue`; `UnsupportedValue` for module types."""
    if isinstance(value, bytes):
        return StringValue(value)
    if isinstance(value, list):
        if all(type(item) is bytes for item in value):
            return ListValue(list(value))
        return JsonValue(value)
    if isinstance(value, ExpiringMembersSet):
        live = set(value)  # (iterating drops expired members)
        expiries = {m: when for m, when in value._values.items() if when is not None and m in live}
        return SetValue(sorted(live), expiries)
    if isinstance(value, Hash):
        fields = list(value.items())
        expiries = {f: when for f, when in value._expirations.items() if f in value}
        return HashValue(fields, expiries)
    if isinstance(value, ZSet):
        return ZSetValue(list(value.items()))
    if isinstance(value, XStream):
        return _stream(value)
    if isinstance(value, _JSON_SCALARS):
        return JsonValue(value)
    raise UnsupportedValue(type(value).__name__)


def from_stored(value: StoredValue) -> Any:
    """A fakeredis value holding `value` (member expiries already past are left out)."""
    if isinstance(value, StringValue):
        return value.data
    if isinstance(value, ListValue):
        return list(value.items)
    if isinstance(value, SetValue):
        members = ExpiringMembersSet({m: None for m in value.members})
        for member, when in value.expiries.items():
            if member in members._values:
                members.set_member_expireat(member, when)
        return members
    if isinstance(value, HashValue):
        hash_ = Hash()
        for name, data in value.fields:
            hash_[name] = data
        for name, when in value.expiries.items():
            if name in hash_._values:
                hash_.set_key_expireat(name, when)
        return hash_
    if isinstance(value, ZSetValue):
        zset = ZSet()
        for member, score in value.members:
            zset.add(member, score)
        return zset
    if isinstance(value, StreamValue):
        return _xstream(value)
    return value.document


def _id(key: StreamEntryKey) -> StreamId:
    return key.ts, key.seq


def _stream(stream: XStream) -> StreamValue:
    groups = []
    for group in stream._groups.values():
        consumers = [StreamConsumer(name, info.last_attempt, info.last_success)
                     for name, info in group.consumers.items()]
        pending = [StreamPending(_id(entry_id), pel.consumer_name, pel.time_read,
                                 pel.times_delivered)
                   for entry_id, pel in sorted(group.pel.items())]
        groups.append(StreamGroup(group.name, _id(group.last_delivered_key),
                                  group.entries_read, consumers, pending))
    return StreamValue(
        entries=[(_id(i), list(stream._values_dict[i])) for i in stream._ids],
        last_id=_id(stream._last_id),
        entries_added=stream._entries_added,
        max_deleted_id=_id(stream._max_deleted_id),
        groups=groups,
    )


def _xstream(value: StreamValue) -> XStream:
    check_stream(value)
    stream = XStream()
    for entry_id, parts in value.entries:
        stream.add(parts, StreamEntryKey(*entry_id))
    stream._last_id = StreamEntryKey(*value.last_id)
    stream._entries_added = value.entries_added
    stream._max_deleted_id = StreamEntryKey(*value.max_deleted_id)
    for group in value.groups:
        stream.group_add(group.name, StreamEntryKey(*group.last_id), group.entries_read)
        target = stream._groups[group.name]
        for consumer in group.consumers:
            info = StreamConsumerInfo(consumer.name)
            info.last_attempt, info.last_success = consumer.seen_time, consumer.active_time
            target.consumers[consumer.name] = info
        for pending in group.pending:
            target.pel[StreamEntryKey(*pending.id)] = PelEntry(
                pending.consumer, pending.delivery_time, pending.delivery_count)
            owner = target.consumers.get(pending.consumer)
            if owner is not None:  # (fakeredis' XNACK leaves entries with no owner)
                owner.pending += 1
    return stream
