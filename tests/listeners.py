"""Store listeners for tests: a callback in the place of the host's triggers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from jshost.store import StoreListener


class EventCallback:
    """A `StoreListener` that hands every event to `on_event(origin, db, event, key)`; what a
    store asks besides comes from `like` (the listener it stands in for), else `wants` (every
    client command waits for its events when True) and `tags` (sections are told apart)."""

    def __init__(self, on_event: Callable[[Any, int, bytes, bytes], Any],
                 like: StoreListener | None = None, wants: bool = False,
                 tags: bool = True) -> None:
        self._on_event = on_event
        self._like = like
        self._wants = wants
        self._tags = tags

    def on_event(self, origin: object, db: int, event: bytes, key: bytes) -> None:
        self._on_event(origin, db, event, key)

    def wants_command(self, args: Sequence[bytes]) -> bool:
        return self._like.wants_command(args) if self._like is not None else self._wants

    def tags_sections(self) -> bool:
        return self._like.tags_sections() if self._like is not None else self._tags
