"""The remote store: a real Redis or Valkey behind the `jshost.store.base` interface.

See `jshost.store.remote.store` for its parts.
"""

from jshost.store.remote.connect import BackendError
from jshost.store.remote.session import RemoteSession
from jshost.store.remote.store import RemoteStore
from jshost.store.remote.url import RedisURL

__all__ = ["BackendError", "RedisURL", "RemoteSession", "RemoteStore"]
