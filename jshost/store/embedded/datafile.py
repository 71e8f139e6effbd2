"""The embedded store's data in `<dir>/data.jsonl` (`jshost serve --dir`; fakeredis' own SAVE
writes nothing): a header line, then one JSON object per key (`jshost.store.values.to_json`, plus
its database, key and expiry time in unix seconds). JSON of typed values, never pickles: a data
file is read, never run.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from jshost.errors import DumpErrors
from jshost.files import write_atomically
from jshost.store import values

if TYPE_CHECKING:
    from jshost.store.embedded.store import EmbeddedStore

log = logging.getLogger("jshost.persistence")

#: Databases a data file may name (Redis' default `databases`).
DATABASES = 16


#: The first line of a data file: what it is, and which version of it.
DATA_HEADER = {"format": "jshost-data", "version": 2}


class DataFileError(ValueError):
    """`<dir>/data.jsonl` cannot be read (`str()` says why and where); nothing was loaded."""


def save_data(store: EmbeddedStore, directory: Path) -> int:
    """Snapshot every key of every database to `<dir>/data.jsonl`: a header line, then one JSON
    object per key (`jshost.store.values.to_json`, plus its database, key and expiry time in
    unix seconds). Returns the number of keys written; keys of types with no such form (time series,
    top-k, t-digest) are left out and logged."""
    lines = [json.dumps(DATA_HEADER).encode()]
    skipped: list[str] = []
    for db, key, value, expiry in store.export_values():
        if isinstance(value, str):
            skipped.append(f"{key!r} (db {db}, {value})")
            continue
        entry = {"db": db, "key": base64.b64encode(key).decode(), "expire_at": expiry,
                 **values.to_json(value)}
        lines.append(json.dumps(entry).encode())
    write_atomically(directory / "data.jsonl", b"\n".join(lines) + b"\n")
    if skipped:
        log.warning("not saved to %s (no file format for their type): %s",
                    directory / "data.jsonl", ", ".join(skipped))
    return len(lines) - 1


def load_data(store: EmbeddedStore, directory: Path) -> int:
    """Restore `<dir>/data.jsonl` into the store; returns the number of keys restored. Raises
    `DataFileError` (before storing anything) for a file it cannot read, and for the pickle
    files older versions wrote, which it never reads (they could run code)."""
    path = directory / "data.jsonl"
    if not path.exists():
        return 0
    entries = []
    header_seen = False
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise DataFileError(DumpErrors.DATA_FILE_BAD.format(
                path=path, line=number, reason=exc)) from None
        if isinstance(data, dict) and "dump" in data:
            raise DataFileError(DumpErrors.DATA_FILE_PICKLE.format(path=path))
        if not header_seen:
            if data != DATA_HEADER:
                raise DataFileError(DumpErrors.DATA_FILE_BAD.format(
                    path=path, line=number, reason=f"expected the header {DATA_HEADER}"))
            header_seen = True
            continue
        try:
            entries.append(_data_entry(data))
        except ValueError as exc:
            raise DataFileError(DumpErrors.DATA_FILE_BAD.format(
                path=path, line=number, reason=exc)) from None
    for db, key, value, expiry in entries:
        store.import_value(db, key, value, expiry)
    return len(entries)


def _data_entry(data: object) -> tuple[int, bytes, values.StoredValue, float | None]:
    """One line of the data file, checked; `ValueError` says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("expected an object")
    db, key, expiry = data.get("db"), data.get("key"), data.get("expire_at")
    if type(db) is not int or not 0 <= db < DATABASES:
        raise ValueError(f"bad database {db!r}")
    if not isinstance(key, str):
        raise ValueError("expected a key")
    if expiry is not None and (type(expiry) not in (int, float) or not 0 <= expiry < 1e15):
        raise ValueError(f"bad expiry time {expiry!r}")
    try:
        raw_key = base64.b64decode(key, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad key: {exc}") from None
    return db, raw_key, values.from_json(data), expiry


class DataFile:
    """`Store.snapshots` of an embedded store: its data in `<dir>/data.jsonl`."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store

    def save(self, directory: Path) -> int:
        return save_data(self.store, directory)

    def load(self, directory: Path) -> int:
        return load_data(self.store, directory)
