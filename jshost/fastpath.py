"""The native call path: runs of `RG.FCALL` / `TFCALL` answered by the Rust extension.

A client's pipeline of calls of sync functions is the common case, and the same work for every
request: parse the command, find the function, enter the atomic section, arm the deadline, call
the prelude's `invokeSync`, drain the microtasks, encode a string or integer, leave the section.
`FastPath.run` hands the connection's request parser and output buffer to the extension's
`FastCalls` (native/src/fastpath.rs), which does all of that for each call at the head of the
buffer with no Python object per call, and stops at the first command it does not take — which
it returns, parsed, for the connection to dispatch as usual.

What stays in Python, in one place each (the extension only calls it): the atomic section
(`AtomicSection.enter` / `exit` give and end each call's token), the reply of any outcome the
extension does not encode (`Calls.sync_outcome`: exceptions, promises, objects, time-outs with
their termination count and GC, values over `max-reply-size`), job errors, the `kill` policy's
overrun log. What the extension may run at all is what this module puts in its table: the sync
functions of the loaded libraries of the rg era (a tf library's entries keep tf's shared heap
budget and OOM state, docs/architecture.md "JS heap limits", on the Python path), kept in step
with every load, upgrade and delete (a registry observer). Everything else — an unknown function,
too few arguments, an async function, a function that may write while the store is out of memory
— is answered by the Python path.

It runs only while the client is in the plain state (authenticated, outside MULTI, not a RESP2
subscriber), the server is no replica (`host.gates`, asked once per run, as the store's `is_oom`)
and the extension's own switch `FastCalls.open` is on. ``JSHOST_NATIVE_CALLS=0`` in the
environment turns it off (the tests compare both paths byte for byte).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from jshost._engine import FastCalls, JSFunction
from jshost.errors import ReplyError, ServerErrors
from jshost.host.library import ALLOW_OOM, NO_WRITES, RAW_ARGUMENTS, Library
from jshost.host.scheduler import log_job_errors
from jshost.replies import ErrorReply
from jshost.resp import RespError, encode_into
from jshost.store.command_table import INTERNAL_PREFIX

if TYPE_CHECKING:
    from jshost.client_state import ClientState
    from jshost.host import Host
    from jshost.store import CommandInfo

log = logging.getLogger("jshost.server")

#: Set to ``0`` to answer every call on the Python path.
ENV_SWITCH = "JSHOST_NATIVE_CALLS"


def enabled_by_environment() -> bool:
    """Whether the environment leaves the native call path on (the default)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "no", "off", "false")


class FastPath:
    """The native call path of one host (see the module docstring)."""

    def __init__(self, host: Host, commands: dict[bytes, CommandInfo]) -> None:
        self._host = host
        self._section = host.section
        self._limits = host.limits
        self._scheduler = host.scheduler
        self._store = host.store
        self._calls = host.calls
        self._gates = host.gates  # a replica: every call the Python way (its texts and rules)
        # What CLIENT INFO's `cmd=` shows after a run, by `FastCalls.last`.
        self._last = (None, commands.get(b"rg.fcall"), commands.get(b"tfcall"))
        self.native = FastCalls(self._section.enter, self._section.exit, self._outcome,
                                log_job_errors, self._limits.log_overrun, INTERNAL_PREFIX)
        for lib in host.libraries.values():
            self.library_loaded(lib, None)
        host.registry.observers.append(self)

    # --- the table (a registry observer) ------------------------------------------------------

    def library_loaded(self, lib: Library, old: Library | None) -> None:
        if old is not None:
            self.native.remove_library(old.name)
        self.native.remove_library(lib.name)
        invoke = lib.runtime.invoke_sync  # the prelude's `invokeSync`, a handle into the runtime
        if not isinstance(invoke, JSFunction):
            return  # (an engine without one: every call takes the Python path)
        if lib.era == "tf":
            return  # tf's shared heap budget and OOM state are kept around each entry in Python
        for fn in lib.functions.values():
            if fn.is_async or fn.coroutine:
                continue  # the Python path answers these
            self.native.add(lib.name, fn.name, invoke, fn.fn, fn.flags,
                            bool(fn.flags & RAW_ARGUMENTS), bool(fn.flags & (NO_WRITES | ALLOW_OOM)),
                            lib)

    def library_removed(self, lib: Library) -> None:
        self.native.remove_library(lib.name)

    # --- running ------------------------------------------------------------------------------

    def run(self, client: ClientState, parser: Any, out: bytearray, bound: int) -> list[bytes] | None:
        """Run the calls at the head of `parser`'s buffer into `out`; the first command left
        for the Python path, or None when none is complete (or `out` is past `bound`). A
        protocol error is raised after the replies before it."""
        if (client.multi is not None or not client.authenticated
                or (client.subscribed and client.protocol == 2) or not self.native.open
                or self._gates.replica):
            return parser.get_command()  # type: ignore[no-any-return]
        if self._scheduler.deferred:
            self._scheduler.flush_deferred()
        deadline, kill = self._limits.current()
        native = self.native
        try:
            return native.run(parser, out, client.protocol, client.session.db,
                              self._store.is_oom(), deadline,
                              self._limits.lock_timeout if kill else None, bound)
        except RespError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug costs one reply, as in the dispatcher
            log.error("a call on the native path failed", exc_info=exc)
            encode_into(out, ErrorReply(ServerErrors.INTERNAL_ERROR.format(type(exc).__name__)))
            return parser.get_command()  # type: ignore[no-any-return]
        finally:
            last = native.last
            if last:
                client.last_command = self._last[last]

    def _outcome(self, lib: Library, value: Any, error: BaseException | None) -> Any:
        """The reply of an outcome the extension does not encode (`Calls.sync_outcome`)."""
        try:
            reply = self._calls.sync_outcome(lib, value, error, False)
        except ReplyError as exc:
            return ErrorReply(exc.text)
        except Exception as exc:  # noqa: BLE001 - a bug costs one reply, as in the dispatcher
            log.error("a call on the native path failed", exc_info=exc)
            return ErrorReply(ServerErrors.INTERNAL_ERROR.format(type(exc).__name__))
        return reply
