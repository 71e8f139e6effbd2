"""Where commands that are not jshost's own go: the store interface and its implementations.

* `Store` / `Session` (`base`): the interface; replies are `jshost.replies` values typed as RESP3.
* `EmbeddedStore` (`embedded`): an in-process fakeredis server.
* `RemoteStore` (`remote`): a real Redis or Valkey server.
* `CommandTable` (`command_table`): command metadata and the script-mode checks of SPEC §5.
"""

from jshost.store.base import NO_REPLY, PushHandler, Session, Store
from jshost.store.command_table import HOST_COMMANDS, CommandInfo, CommandTable, KeySpec
from jshost.store.embedded import EmbeddedSession, EmbeddedStore
from jshost.store.remote import RemoteSession, RemoteStore

__all__ = [
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
]
