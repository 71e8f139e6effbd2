"""The gates: whether the server may run writes now — one place every entry point asks.

Two facts decide it, both the store's (docs/architecture.md, "The gates"):

* **replica**: the server has a `replicaof` target (REPLICAOF / SLAVEOF `<host> <port>`);
* **oom**: `maxmemory` is set and used memory is over it;
* and, for tf only, **avoiding replication traffic** (a CLIENT PAUSE WRITE or ALL in force), which
  tf's entry and `block()` checks treat as a replica (stream reads do not look at it).

The function call commands, `block()`, keyspace and stream triggers (and the fast call path)
read them here: `entry_refusal` / `block_refusal` give RedisGears' text for a function's flags.
A change of role seen here (by a REPLICAOF through jshost, or noticed on a backend changed by
someone else) is told to the `observers`, in the order they were added: the stream triggers stop
reading on a replica and scan again on a primary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from jshost import errors
from jshost.errors import Era
from jshost.host.library import ALLOW_OOM, NO_WRITES
from jshost.store import Store

log = logging.getLogger("jshost.gates")

#: Called with the new role: True when the server became a replica, False when a primary.
RoleObserver = Callable[[bool], None]


class Gates:
    """The replica and OOM gates of one host (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.observers: list[RoleObserver] = []
        self._was_replica = False
        #: Whether Redis would ask modules to avoid replication traffic now (a CLIENT PAUSE
        #: WRITE or ALL in force): the server sets it (`Dispatcher`). tf treats it as a replica
        #: for the call commands and `block()`; rg does not know it.
        self.avoiding_replication: Callable[[], bool] = lambda: False

    @property
    def replica(self) -> bool:
        """Whether the server is not a primary now (observers hear of a change first)."""
        replica = self.store.is_replica()
        if replica != self._was_replica:
            self._role_changed(replica)
        return replica

    @property
    def oom(self) -> bool:
        """Whether the data is over `maxmemory` now."""
        return self.store.is_oom()

    def entry_refusal(self, era: Era, flags: int) -> str | None:
        """Why a function with `flags` may not be called now (the replica check, then the OOM
        check, of the call commands), or None."""
        if flags & NO_WRITES:
            return None
        if self.replica or (era == "tf" and self.avoiding_replication()):
            return errors.writes_on_replica(era)
        if not flags & ALLOW_OOM and self.oom:
            return errors.OOM_CAN_NOT_RUN
        return None

    def block_refusal(self, era: Era, flags: int) -> str | None:
        """Why `block()` may not lock for background work started by a function with `flags`
        (triggers have none), or None."""
        if flags & NO_WRITES:
            return None
        if self.replica or (era == "tf" and self.avoiding_replication()):
            return errors.can_not_lock_redis(errors.lock_replica_reason(era))
        if not flags & ALLOW_OOM and self.oom:
            return errors.can_not_lock_redis(errors.LOCK_OOM_REASON)
        return None

    def role_changed(self) -> None:
        """The role may have changed (a REPLICAOF went through): look now and tell observers."""
        self.store.forget_server_state()
        _ = self.replica

    def _role_changed(self, replica: bool) -> None:
        self._was_replica = replica
        log.info("the server is now a %s", "replica" if replica else "primary")
        for observer in list(self.observers):
            try:
                observer(replica)
            except Exception:  # one observer's failure must not cost the others
                log.exception("role change observer failed")
