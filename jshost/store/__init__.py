"""Where commands that are not jshost's own go: the store interface and its implementations.

* `Store` / `Session` / `StoreListener` (`base`): the interface; replies are `jshost.replies`
  values typed as RESP3.
* `EmbeddedStore` (`embedded/`): an in-process fakeredis server.
* `RemoteStore` (`remote/`): a real Redis or Valkey server; `managed` runs a private Valkey for
  it (with `watchdog`).
* `CommandTable` (`command_table`): command metadata and the script-mode checks.
* `keyspace_events`: Redis 7's keyspace events for a command (the embedded store names them).
* `values` and `rdb`: stored values, and Redis' DUMP payload format.
"""

from jshost.store.base import (
    ATOMIC_SECTION,
    NO_REPLY,
    PushHandler,
    Session,
    Store,
    StoreListener,
)
from jshost.store.command_table import HOST_COMMANDS, CommandInfo, CommandTable, KeySpec
from jshost.store.embedded import EmbeddedSession, EmbeddedStore
from jshost.store.remote import RemoteSession, RemoteStore

__all__ = [
    "ATOMIC_SECTION",
    "HOST_COMMANDS",
    "NO_REPLY",
    "CommandInfo",
    "CommandTable",
    "EmbeddedSession",
    "EmbeddedStore",
    "KeySpec",
    "PushHandler",
    "RemoteSession",
    "RemoteStore",
    "Session",
    "Store",
    "StoreListener",
]
