"""The embedded store: an in-process fakeredis server behind the `jshost.store.base` interface.

See `jshost.store.embedded.store` for its parts, and `jshost.store.embedded.socket` for every
fakeredis internal it relies on.
"""

from jshost.store.embedded.session import EmbeddedSession
from jshost.store.embedded.store import EmbeddedStore

__all__ = ["EmbeddedSession", "EmbeddedStore"]
