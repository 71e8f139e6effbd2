"""The embedded store's used memory: an estimate, so that `maxmemory` means something.

`used_memory` = `BASELINE` (what an empty Redis uses, about 1 MB) + the size of every key and its
value, counted as their bytes plus a fixed overhead per key and per element (Redis' own per-object
costs are of that order). Sizes are kept per key and only the keys written since the last look
are measured again (`TrackedDatabase` reports every write), so a check costs little once made;
nothing is counted until the first look (`maxmemory` set, or INFO memory asked).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from fakeredis.model import XStream

if TYPE_CHECKING:
    from fakeredis import FakeServer

BASELINE: Final = 1024 * 1024
KEY_OVERHEAD: Final = 56  # dictEntry + robj + expiry slot, roughly
ELEMENT_OVERHEAD: Final = 16
_MAX_DEPTH: Final = 4


class DatasetSize:
    """Bytes used by the data of one fakeredis server (see the module docstring)."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self._sizes: dict[tuple[int, bytes], int] | None = None  # None: not counted yet
        self._dirty: set[tuple[int, bytes]] = set()
        self._total = 0

    def touched(self, db: Any, key: bytes) -> None:
        """`key` of database `db` was written or removed."""
        if self._sizes is not None:
            self._dirty.add((id(db), key))

    def reset(self) -> None:
        """Count everything again at the next look (SWAPDB, a reload)."""
        self._sizes = None

    def used_memory(self) -> int:
        if self._sizes is None:
            self._count_all()
        elif self._dirty:
            self._count_dirty()
        return BASELINE + self._total

    def _databases(self) -> dict[int, Any]:
        return {id(db): db for db in self.server.dbs.values()}

    def _count_all(self) -> None:
        sizes: dict[tuple[int, bytes], int] = {}
        for db in self.server.dbs.values():
            for key, item in list(db._dict.items()):
                sizes[(id(db), key)] = key_size(key, item.value)
        self._sizes, self._dirty = sizes, set()
        self._total = sum(sizes.values())

    def _count_dirty(self) -> None:
        sizes = self._sizes
        assert sizes is not None
        dbs = self._databases()
        for db_id, key in self._dirty:
            self._total -= sizes.pop((db_id, key), 0)
            db = dbs.get(db_id)
            item = db._dict.get(key) if db is not None else None
            if item is not None:
                size = sizes[(db_id, key)] = key_size(key, item.value)
                self._total += size
        self._dirty = set()


def key_size(key: bytes, value: Any) -> int:
    """The estimated bytes of one key and its value."""
    return KEY_OVERHEAD + len(key) + _size(value, 0)


def _size(value: Any, depth: int) -> int:
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if isinstance(value, (int, float)) or depth > _MAX_DEPTH:
        return 8
    if isinstance(value, XStream):
        return _elements(value._values_dict.values(), depth)
    items = getattr(value, "items", None)
    if callable(items):
        return _elements((pair for pair in items()), depth)
    if isinstance(value, Iterable):
        return _elements(value, depth)
    return ELEMENT_OVERHEAD


def _elements(values: Iterable[Any], depth: int) -> int:
    return sum(ELEMENT_OVERHEAD + _size(v, depth + 1) for v in values)
