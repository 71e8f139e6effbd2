"""``INFO``: the store's sections plus a ``# jshost`` section — what an operator looks at.

``INFO`` / ``INFO default`` / ``INFO all`` / ``INFO everything`` add the jshost section to the
store's reply; ``INFO jshost`` gives it alone. The store's ``# Clients`` section is replaced by
jshost's own (its clients, not the store's connections): ``connected_clients``,
``cluster_connections``, ``maxclients``, ``client_recent_max_output_buffer`` (the largest unsent
output of a client now) and ``blocked_clients``. Fields of the jshost section::

    # jshost
    jshost_version:0.1.0
    engine:quickjs-ng 0.16.2
    store:embedded
    libraries:2
    functions:5
    keyspace_triggers:1
    stream_triggers:0
    pending_jobs:0            (background jobs queued, all libraries)
    pending_async_calls:3     (replies waiting on promises, and tf callAsync commands)
    terminations:1            (runs stopped by lock-redis-timeout or the memory limit)
    backend_connections:3     (connections to a --backend / managed store open now)
    library_<name>:functions=2,pending_jobs=0,pending_async_calls=3,terminations=1,memory=123456
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from jshost import __version__
from jshost.replies import ErrorReply, Result, Verbatim

if TYPE_CHECKING:
    from jshost.commands.dispatch import Handler, ServerContext
    from jshost.connection import ClientState
    from jshost.host import Host
    from jshost.host.library import Library

_WITH_JSHOST = {b"default", b"all", b"everything"}
_WITH_CLIENTS = _WITH_JSHOST | {b"clients"}


def jshost_section(host: Host) -> str:
    """The ``# jshost`` section text."""
    libs = list(host.libraries.values())
    lines = [
        "# jshost",
        f"jshost_version:{__version__}",
        f"engine:{host.engine.version}",
        f"store:{host.store.kind}",
        f"libraries:{len(libs)}",
        f"functions:{sum(len(lib.functions) for lib in libs)}",
        f"keyspace_triggers:{sum(len(lib.keyspace_triggers) for lib in libs)}",
        f"stream_triggers:{sum(len(lib.stream_triggers) for lib in libs)}",
        f"pending_jobs:{sum(lib.pending_jobs for lib in libs)}",
        f"pending_async_calls:{sum(_pending(lib) for lib in libs)}",
        f"terminations:{sum(lib.terminations for lib in libs)}",
        f"backend_connections:{host.store.connection_count}",
    ]
    for lib in libs:
        memory = 0 if lib.runtime.closed else lib.runtime.used_memory()
        lines.append(
            f"library_{lib.name}:functions={len(lib.functions)},pending_jobs={lib.pending_jobs},"
            f"pending_async_calls={_pending(lib)},terminations={lib.terminations},"
            f"memory={memory}"
        )
    return "\r\n".join(lines) + "\r\n"


def _pending(lib: Library) -> int:
    return lib.inflight + len(lib.pending_async_calls)


def info(client: ClientState, argv: list[bytes]) -> Result:
    """``INFO [section ...]``."""
    ctx = client.ctx
    sections = [a.lower() for a in argv[1:]]
    ours = not sections or bool(_WITH_JSHOST & set(sections)) or b"jshost" in sections
    clients = not sections or bool(_WITH_CLIENTS & set(sections))
    theirs = [a for a in argv[1:] if a.lower() != b"jshost"]
    if sections and not theirs:
        return Verbatim(jshost_section(ctx.host).encode(), "txt")
    if not ours and not clients:
        return ctx.dispatcher.forward(client, argv)  # type: ignore[union-attr]
    reply = ctx.dispatcher.forward_typed(client, [argv[0], *theirs])  # type: ignore[union-attr]
    # The clients are counted now, before this one waits for the store's part.
    counted = ctx.clients_info() if clients else None
    if isinstance(reply, asyncio.Future):
        return asyncio.ensure_future(_joined_later(ctx, reply, ours, counted))
    return _joined(ctx, reply, ours, counted)


async def _joined_later(ctx: ServerContext, reply: asyncio.Future[Any], ours: bool,
                        counted: list[tuple[str, int]] | None) -> Result:
    return _joined(ctx, await reply, ours, counted)


def _joined(ctx: ServerContext, reply: Result, ours: bool,
            counted: list[tuple[str, int]] | None) -> Result:
    """The store's INFO text with jshost's `# Clients` in place of the store's, and the jshost
    section appended (same reply type)."""
    if isinstance(reply, ErrorReply) or not isinstance(reply, bytes):
        return reply
    parts = [part for part in bytes(reply).split(b"\r\n\r\n") if part.strip(b"\r\n")]
    if counted is not None:
        fields = "".join(f"\r\n{name}:{value}" for name, value in counted)
        section = ("# Clients" + fields).encode()
        found = [i for i, part in enumerate(parts) if part.startswith(b"# Clients")]
        if found:
            parts[found[0]] = section
        else:
            parts.insert(min(1, len(parts)), section)
    if ours:
        parts.append(jshost_section(ctx.host).rstrip("\r\n").encode())
    text = b"\r\n\r\n".join(part.rstrip(b"\r\n") for part in parts) + b"\r\n"
    return Verbatim(text, reply.format) if isinstance(reply, Verbatim) else text


HANDLERS: dict[bytes, Handler] = {b"info": info}
