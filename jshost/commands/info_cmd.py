"""``INFO``: what a Redis 7 reports, with jshost's own facts where jshost is the server the
client talks to, the store's where the store holds the data, and a ``# jshost`` section.

jshost's (replacing the store's fields of the same name):

* ``# Server``: ``redis_mode``, ``os``, ``arch_bits``, ``multiplexing_api``, ``process_id``,
  ``process_supervised``, ``run_id``, ``tcp_port``, ``server_time_usec``, ``uptime_in_seconds``,
  ``uptime_in_days``, ``hz``, ``configured_hz``, ``lru_clock``, ``executable``, ``config_file``,
  ``io_threads_active`` (``redis_version`` and the build fields stay the store's: they say what
  the commands can do);
* ``# Clients``: jshost's own connections (`ServerContext.clients`);
* ``# Stats``: ``total_connections_received``, ``total_commands_processed``,
  ``instantaneous_ops_per_sec``, ``total_net_input_bytes``, ``total_net_output_bytes``,
  ``instantaneous_input_kbps``, ``instantaneous_output_kbps``, ``rejected_connections`` (the
  rest, such as ``expired_keys`` and ``keyspace_hits``, is the store's);
* ``# Replication``: jshost is a master without replicas, whatever the backend is (its
  replication is not the clients' business, and its addresses would lead them around jshost);
* ``# CPU``: jshost's process; ``# Cluster``: ``cluster_enabled:0``.

The store's: ``# Memory``, ``# Persistence``, ``# Modules``, ``# Commandstats``,
``# Errorstats``, ``# Latencystats``, ``# Keyspace``. ``INFO jshost`` gives jshost's section
alone; it also comes with ``INFO``, ``default``, ``all`` and ``everything``::

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
import os
import platform
import resource
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from jshost import __version__
from jshost.commands.info_text import Sections
from jshost.replies import ErrorReply, Result, Verbatim

if TYPE_CHECKING:
    from jshost.client_state import ClientState
    from jshost.commands.dispatch import Handler, ServerContext
    from jshost.host import Host
    from jshost.host.library import Library

#: Redis' sections, in its order: those `INFO` / `INFO default` give, then the others.
DEFAULT_SECTIONS: Final = ("server", "clients", "memory", "persistence", "stats", "replication",
                           "cpu", "modules", "errorstats", "cluster", "keyspace")
ALL_SECTIONS: Final = ("server", "clients", "memory", "persistence", "stats", "replication",
                       "cpu", "modules", "commandstats", "errorstats", "latencystats",
                       "cluster", "keyspace")
#: Sections jshost writes itself (entirely, or over the store's: MERGED_SECTIONS).
OWN_SECTIONS: Final = frozenset(("server", "clients", "stats", "replication", "cpu", "cluster"))
MERGED_SECTIONS: Final = frozenset(("server", "stats"))
#: Redis 7's field order in the merged sections.
FIELD_ORDER: Final = {
    "server": (
        "redis_version", "redis_git_sha1", "redis_git_dirty", "redis_build_id", "redis_mode",
        "os", "arch_bits", "monotonic_clock", "multiplexing_api", "atomicvar_api",
        "gcc_version", "process_id", "process_supervised", "run_id", "tcp_port",
        "server_time_usec", "uptime_in_seconds", "uptime_in_days", "hz", "configured_hz",
        "lru_clock", "executable", "config_file", "io_threads_active",
    ),
    "stats": (
        "total_connections_received", "total_commands_processed", "instantaneous_ops_per_sec",
        "total_net_input_bytes", "total_net_output_bytes", "total_net_repl_input_bytes",
        "total_net_repl_output_bytes", "instantaneous_input_kbps", "instantaneous_output_kbps",
        "instantaneous_input_repl_kbps", "instantaneous_output_repl_kbps",
        "rejected_connections", "sync_full", "sync_partial_ok", "sync_partial_err",
        "expired_keys", "expired_stale_perc", "expired_time_cap_reached_count",
        "expire_cycle_cpu_milliseconds", "evicted_keys", "evicted_clients",
        "total_eviction_exceeded_time", "current_eviction_exceeded_time", "keyspace_hits",
        "keyspace_misses", "pubsub_channels", "pubsub_patterns", "pubsubshard_channels",
    ),
}
#: jshost's fields of each of its sections.
Own = dict[str, list[tuple[str, object]]]
_TITLES: Final = {"cpu": "CPU"}


def wanted_sections(argv: list[bytes]) -> tuple[list[str], bool]:
    """The sections asked for (Redis' order; names lower-case) and whether jshost's is one."""
    asked = {a.decode("utf-8", "replace").lower() for a in argv[1:]}
    if not asked or "default" in asked:
        names = list(DEFAULT_SECTIONS)
    elif asked & {"all", "everything"}:
        names = list(ALL_SECTIONS)
    else:
        names = []
    names += [n for n in ALL_SECTIONS if n in asked and n not in names]
    extra = sorted(asked - set(ALL_SECTIONS) - {"default", "all", "everything", "jshost"})
    with_jshost = not asked or bool(asked & {"default", "all", "everything", "jshost"})
    return names + extra, with_jshost


def info(client: ClientState, argv: list[bytes]) -> Any:
    """``INFO [section ...]``."""
    ctx = client.ctx
    names, with_jshost = wanted_sections(argv)
    # jshost's facts now, before this client waits for the store's part (it would count itself
    # blocked).
    own = own_sections(ctx)
    ours = {name: OWN_FIELDS[name](ctx) for name in names if name in own}
    store_names = [n for n in names if n not in own or n in MERGED_SECTIONS]
    if not store_names:
        return Verbatim(render(ctx, Sections(), names, ours, with_jshost).encode(), "txt")
    reply = ctx.dispatcher.forward_typed(  # type: ignore[union-attr]
        client, [argv[0], *(n.encode() for n in store_names)]
    )
    if isinstance(reply, asyncio.Future):
        return asyncio.ensure_future(_rendered_later(ctx, reply, names, ours, with_jshost))
    return _rendered(ctx, reply, names, ours, with_jshost)


async def _rendered_later(ctx: ServerContext, reply: asyncio.Future[Any], names: list[str],
                          ours: Own, with_jshost: bool) -> Any:
    return _rendered(ctx, await reply, names, ours, with_jshost)


def _rendered(ctx: ServerContext, reply: Any, names: list[str], ours: Own,
              with_jshost: bool) -> Any:
    if isinstance(reply, ErrorReply) or not isinstance(reply, bytes):
        return reply
    text = render(ctx, Sections.parse(reply), names, ours, with_jshost).encode()
    return Verbatim(text, "txt")


def own_sections(ctx: ServerContext) -> frozenset[str]:
    """The sections jshost writes now: `# Replication` is the store's once it is a replica
    (REPLICAOF: the role and the primary's address are the store's facts, not jshost's)."""
    return OWN_SECTIONS - {"replication"} if ctx.host.gates.replica else OWN_SECTIONS


def render(ctx: ServerContext, store: Sections, names: list[str], ours: Own,
           with_jshost: bool) -> str:
    """The INFO text: the store's sections with jshost's over them, in Redis' order."""
    out = Sections()
    for name in names:
        title = _TITLES.get(name, name.capitalize())
        theirs = store.get(name)
        if name not in ours:
            if store.has(name) or name in ALL_SECTIONS:
                out.replace(title, theirs.items())
        elif name in MERGED_SECTIONS:  # the store's fields, jshost's over them, Redis' order
            out.replace(title, in_order(theirs, ours[name], FIELD_ORDER[name]))
        else:
            out.replace(title, ours[name])
    text = out.render()
    if with_jshost:
        text += ("\r\n" if text else "") + jshost_section(ctx.host)
    return text


def in_order(theirs: Mapping[str, str], ours: list[tuple[str, object]],
             order: tuple[str, ...]) -> list[tuple[str, object]]:
    """Both sets of fields, ours winning, in Redis' order (others after, as they came)."""
    merged: dict[str, object] = {**theirs, **dict(ours)}
    known = [(name, merged.pop(name)) for name in order if name in merged]
    return known + list(merged.items())


# --- jshost's facts ---------------------------------------------------------------------------


def server_fields(ctx: ServerContext) -> list[tuple[str, object]]:
    now = time.time()
    uptime = int(now - ctx.started)
    loop = asyncio.get_running_loop()
    selector = getattr(loop, "_selector", None)
    api = type(selector).__name__.removesuffix("Selector").lower() if selector else "asyncio"
    return [
        ("redis_mode", "standalone"),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("arch_bits", 64 if platform.architecture()[0] == "64bit" else 32),
        ("multiplexing_api", api),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", ctx.run_id),
        ("tcp_port", ctx.listener.port),
        ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", 10),
        ("configured_hz", 10),
        ("lru_clock", int(now) & ((1 << 24) - 1)),
        ("executable", ctx.executable),
        ("config_file", ctx.config_file),
        ("io_threads_active", 0),
    ]


def clients_fields(ctx: ServerContext) -> list[tuple[str, object]]:
    """`# Clients`, from jshost's own connections (Redis' names and order)."""
    connections = list(ctx.connections())
    return [
        ("connected_clients", len(connections)),
        ("cluster_connections", 0),
        ("maxclients", ctx.listener.maxclients),
        ("client_recent_max_input_buffer", 0),
        ("client_recent_max_output_buffer",
         max((conn.output_size() for conn in connections), default=0)),
        ("blocked_clients", sum(conn.blocked for conn in connections)),
        ("tracking_clients", sum(1 for c in connections if c.client and c.client.tracking)),
        ("clients_in_timeout_table", 0),
    ]


def stats_fields(ctx: ServerContext) -> list[tuple[str, object]]:
    stats = ctx.stats
    ops, input_kbps, output_kbps = stats.instantaneous()
    return [
        ("total_connections_received", stats.connections_received),
        ("total_commands_processed", ctx.commands_processed),
        ("instantaneous_ops_per_sec", ops),
        ("total_net_input_bytes", stats.net_input_bytes),
        ("total_net_output_bytes", stats.net_output_bytes),
        ("instantaneous_input_kbps", input_kbps),
        ("instantaneous_output_kbps", output_kbps),
        ("rejected_connections", stats.rejected_connections),
    ]


def replication_fields(ctx: ServerContext) -> list[tuple[str, object]]:
    return [
        ("role", "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", ctx.run_id),
        ("master_replid2", "0" * 40),
        ("master_repl_offset", 0),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", 1048576),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


def cpu_fields(ctx: ServerContext) -> list[tuple[str, object]]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    thread = resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF))
    return [
        ("used_cpu_sys", f"{me.ru_stime:.6f}"),
        ("used_cpu_user", f"{me.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
        ("used_cpu_sys_main_thread", f"{thread.ru_stime:.6f}"),
        ("used_cpu_user_main_thread", f"{thread.ru_utime:.6f}"),
    ]


def cluster_fields(ctx: ServerContext) -> list[tuple[str, object]]:
    return [("cluster_enabled", 0)]


OWN_FIELDS: Final = {
    "server": server_fields,
    "clients": clients_fields,
    "stats": stats_fields,
    "replication": replication_fields,
    "cpu": cpu_fields,
    "cluster": cluster_fields,
}


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


def role(client: ClientState, argv: list[bytes]) -> Result:
    """``ROLE``: a primary, jshost's answer: a master without replicas (a backend's own
    replicas would point clients around jshost); a replica (REPLICAOF), the store's answer, as
    INFO's ``# Replication`` (`own_sections`)."""
    if client.ctx.host.gates.replica:  # the store's own answer: whose replica it is
        return client.ctx.dispatcher.forward(client, argv)  # type: ignore[union-attr]
    return [b"master", 0, []]


HANDLERS: dict[bytes, Handler] = {b"info": info, b"role": role}
