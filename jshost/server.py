"""The listener: accept loop, the set of live connections, and graceful shutdown.

    host = Host(EmbeddedStore())
    async with Server(host, port=0) as server:      # binds; port 0 picks a free port
        print(server.port)
        await server.serve_forever()                # until shutdown() / request_shutdown()

Shutdown (`shutdown`, or SIGINT/SIGTERM through `run`) is designed in:

1. stop accepting (the listening socket closes);
2. optionally give clients blocked on a command (RG.FCALLASYNC, BLPOP) ``grace`` seconds;
3. every connection fails the command it still waits on with
   ``-ERR jshost is shutting down: the command was not completed``, writes what it has, and
   closes; JS work already started is left to finish or be dropped with its library;
4. connections that do not go away within `CLOSE_TIMEOUT` (a client not reading) are aborted.

Nothing in it waits without a bound. The host and the store belong to whoever made them; `run`
(used by ``jshost serve``) closes them after the server has stopped.

The listener's settings (`jshost.listener_config.ListenerConfig`: port, bind, TLS, maxclients,
protected mode, timeouts, buffer limits) are read here: a plain TCP listener and, with
``tls-port``, a TLS one (Python's `ssl`, redis-server's meanings for ``tls-*``), both with a
``tcp-backlog`` of 4096 by default (asyncio's default of 100 made a burst of new connections
overflow the accept queue, and every dropped SYN costs its client a one-second retransmission:
10 000 connections took ~55 s; see bench/connections.py). A new
client is refused with Redis's error past ``maxclients`` or, in protected mode, when it is not
on the loopback interface; the open-files limit is raised for ``maxclients`` at start, which is
lowered (with Redis's warning) when the limit cannot be.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from jshost.commands.dispatch import Dispatcher, ServerContext
from jshost.commands.stats import SAMPLE_EVERY
from jshost.connection import Connection
from jshost.errors import ListenerErrors, ServerErrors
from jshost.host import Host
from jshost.host.persistence import Persistence
from jshost.listener_config import RESERVED_FDS, ListenerConfig, OutputBufferLimit

log = logging.getLogger("jshost.server")

#: How long shutdown waits for closed connections to go before aborting them (seconds).
CLOSE_TIMEOUT = 5.0

#: The cyclic garbage collector's thresholds while serving (Python's default: 700, 10, 10).
#: A request allocates a few short-lived containers (argument lists, futures), so with the
#: default a young collection ran every few dozen requests and an older one every few hundred.
SERVING_GC_THRESHOLDS = (10_000, 20, 20)
#: After this many closed connections, their garbage is collected (see `Server._closed`).
CLOSED_PER_COLLECTION = 1000
GC_GENERATION_AFTER_CHURN = 1


class Server:
    """A Redis-protocol (RESP2 and RESP3) server in front of one `Host`."""

    def __init__(
        self,
        host: Host,
        *,
        config: ListenerConfig | None = None,
        bind: str | None = None,
        port: int | None = None,
        requirepass: str | None = None,
        redis_version: str = "7.2.4",
        client_query_buffer_limit: int | None = None,
        pubsub_output_buffer_limit: OutputBufferLimit | None = None,
    ) -> None:
        """`config` holds the listener's settings; the keyword arguments override it."""
        if client_query_buffer_limit is not None and client_query_buffer_limit < 1:
            raise ValueError("client_query_buffer_limit must be positive")
        self.host = host
        self.config = config = config or ListenerConfig()
        if bind is not None:
            config.bind = (bind,)
        if port is not None:
            config.port = port
        if requirepass is not None:
            config.requirepass = requirepass
        if client_query_buffer_limit is not None:
            config.client_query_buffer_limit = client_query_buffer_limit
        if pubsub_output_buffer_limit is not None:
            config.output_buffer_limits = {**config.output_buffer_limits,
                                           "pubsub": pubsub_output_buffer_limit}
        self.requested_port = config.port
        config.on_change.append(self._config_changed)
        self.ctx = ServerContext(
            host=host,
            requirepass=config.requirepass,
            redis_version=redis_version,
            request_shutdown=self.request_shutdown,
            listener=config,
            unblock_clients=self.unblock_clients,
        )
        self.dispatcher = Dispatcher(self.ctx)
        self._connections: set[Connection] = set()
        # One asyncio server per bind address (so that port 0 is one port for all of them).
        self._listeners: list[asyncio.Server] = []
        self._tls_listeners: list[asyncio.Server] = []
        self._timeouts: asyncio.Task[None] | None = None
        self._sampler: asyncio.Task[None] | None = None  # INFO's instantaneous rates
        self._closed_since_collection = 0
        self._stopped = asyncio.Event()
        self._no_connections = asyncio.Event()
        self._no_connections.set()
        self._shutdown_task: asyncio.Task[None] | None = None

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start accepting clients (raises OSError if the address is taken,
        ssl.SSLError / OSError if the TLS files cannot be used)."""
        config = self.config
        self._reserve_descriptors()
        context = tls_context(config) if config.tls_port else None
        # With tls-port set, port 0 means no plain TCP listener, as in Redis; without, a free port.
        if config.port or context is None:
            self._listeners = await self._listen(self.requested_port, None)
            config.port = self.port
            log.info("listening on %s:%d", self.bind, self.port)
        if context is not None:
            self._tls_listeners = await self._listen(config.tls_port, context)
            log.info("listening with TLS on %s:%d", self.bind, self.tls_port)
        exposed = config.exposed_unprotected
        if config.protected_mode and exposed:
            log.warning(ListenerErrors.PROTECTED_MODE_WARNING, " ".join(exposed))
        self._config_changed(frozenset({"timeout"}))
        self._sampler = asyncio.get_running_loop().create_task(self._sample_stats())

    async def _listen(self, port: int, context: ssl.SSLContext | None) -> list[asyncio.Server]:
        """A listener on each bind address, all on `port` (the first one's when 0)."""
        loop = asyncio.get_running_loop()
        listeners: list[asyncio.Server] = []
        try:
            for host in self.config.bind:
                listener = await loop.create_server(
                    self._new_connection, host, port, reuse_address=True,
                    backlog=self.config.tcp_backlog, ssl=context)
                listeners.append(listener)
                port = port or int(listener.sockets[0].getsockname()[1])
        except BaseException:
            for listener in listeners:
                listener.close()
            raise
        return listeners

    @property
    def bind(self) -> str:
        """The address(es) listened on, as `CONFIG GET bind` shows them."""
        return " ".join(self.config.bind)

    @property
    def port(self) -> int:
        """The plain TCP port actually bound (useful with port 0)."""
        if not self._listeners or not self._listeners[0].sockets:
            raise RuntimeError("the server is not listening on a plain TCP port")
        return int(self._listeners[0].sockets[0].getsockname()[1])

    @property
    def tls_port(self) -> int:
        """The TLS port bound (0: none)."""
        if not self._tls_listeners or not self._tls_listeners[0].sockets:
            return 0
        return int(self._tls_listeners[0].sockets[0].getsockname()[1])

    @property
    def client_query_buffer_limit(self) -> int:
        return self.config.client_query_buffer_limit

    @property
    def rejected_connections(self) -> int:
        """Clients refused at once (maxclients, protected mode): Redis's rejected_connections."""
        return self.ctx.stats.rejected_connections

    def unblock_clients(self, text: str) -> None:
        """Answer every blocked client `text`, then close its connection (the change to
        replica, `jshost.commands.role_change`)."""
        for conn in list(self._connections):
            if conn.blocked:
                conn.force_unblock(text)

    @property
    def connections(self) -> frozenset[Connection]:
        """The clients connected right now."""
        return frozenset(self._connections)

    @property
    def stopping(self) -> bool:
        """Whether shutdown has begun."""
        return self._shutdown_task is not None

    async def serve_forever(self) -> None:
        """Return once the server has shut down."""
        await self._stopped.wait()

    def request_shutdown(self) -> None:
        """Start a graceful shutdown without waiting for it (signal handlers, SHUTDOWN)."""
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.ensure_future(self._shutdown(0.0))

    async def shutdown(self, grace: float = 0.0) -> None:
        """Shut down gracefully (see the module docstring); safe to call more than once."""
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.ensure_future(self._shutdown(grace))
        await asyncio.shield(self._shutdown_task)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # --- internals -----------------------------------------------------------------------------

    async def _sample_stats(self) -> None:
        """INFO's instantaneous rates: a sample of the counters every 100 ms (as Redis)."""
        loop = asyncio.get_running_loop()
        while True:
            self.ctx.stats.sample(loop.time(), self.ctx.commands_processed)
            await asyncio.sleep(SAMPLE_EVERY)

    def _new_connection(self) -> Connection:
        return Connection(self.ctx, self.dispatcher, self._admit, self._closed,
                          config=self.config)

    def _admit(self, conn: Connection, transport: asyncio.Transport) -> str | None:
        """Take a new client in, or say why not (Redis's order: maxclients, protected mode)."""
        if self.stopping:  # accepted just before the listener closed
            return ServerErrors.SHUTTING_DOWN
        stats = self.ctx.stats
        stats.connections_received += 1
        if len(self._connections) >= self.config.maxclients:
            stats.rejected_connections += 1
            return ListenerErrors.MAXCLIENTS_REACHED
        if self.config.protected_mode_refuses(peer_host(transport)):
            stats.rejected_connections += 1
            return ListenerErrors.PROTECTED_MODE
        self._connections.add(conn)
        self._no_connections.clear()
        return None

    def _reserve_descriptors(self) -> None:
        """Raise the open-files limit for maxclients, or lower maxclients (Redis's warning)."""
        config = self.config
        allowed = config.reserve_descriptors(config.maxclients)
        if allowed < config.maxclients:
            limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            log.warning(ListenerErrors.MAXCLIENTS_REDUCED.format(
                requested=config.maxclients,
                needed=config.maxclients + RESERVED_FDS,
                limit=limit, allowed=max(allowed, 1)))
            config.maxclients = max(allowed, 1)

    def _config_changed(self, names: frozenset[str]) -> None:
        """CONFIG SET of listener settings: apply what the connections hold themselves."""
        config = self.config
        if "requirepass" in names:
            self.ctx.requirepass = config.requirepass
        if "client-query-buffer-limit" in names:
            for conn in self._connections:
                conn.set_query_buffer_limit(config.client_query_buffer_limit)
        if "timeout" in names and config.timeout and self._timeouts is None:
            try:
                self._timeouts = asyncio.get_running_loop().create_task(self._close_idle())
            except RuntimeError:
                pass  # not serving yet: `start` begins it

    async def _close_idle(self) -> None:
        """Redis's `timeout`: close clients idle that many seconds (not those blocked on a
        command or subscribed), checked every second, until the setting goes back to 0."""
        loop = asyncio.get_running_loop()
        try:
            while self.config.timeout and not self.stopping:
                await asyncio.sleep(1.0)
                timeout = self.config.timeout
                if not timeout:
                    break  # set back to 0 meanwhile: no client is idle "over 0 s"
                deadline = loop.time() - timeout
                for conn in list(self._connections):
                    if conn.last_active < deadline and conn.idle_closable:
                        log.debug("closing client %s: idle over %ds", conn.client_id, timeout)
                        conn.abort()
        finally:
            self._timeouts = None

    def _closed(self, conn: Connection) -> None:
        self._connections.discard(conn)
        if not self._connections:
            self._no_connections.set()
        self._closed_since_collection += 1
        if self._closed_since_collection >= CLOSED_PER_COLLECTION:
            # A closed connection leaves cyclic garbage (asyncio's transport refers to itself
            # through its read callback); with SERVING_GC_THRESHOLDS it would wait for a rare
            # full collection, and a storm of short-lived clients would grow the heap meanwhile.
            self._closed_since_collection = 0
            gc.collect(GC_GENERATION_AFTER_CHURN)

    async def _shutdown(self, grace: float) -> None:
        log.info("shutting down (%d clients connected)", len(self._connections))
        if self._timeouts is not None:
            self._timeouts.cancel()
        if self._sampler is not None:
            self._sampler.cancel()
        for listener in (*self._listeners, *self._tls_listeners):
            listener.close()
        if grace > 0:
            waiting = [c.waiting for c in self._connections if c.waiting is not None]
            if waiting:
                await asyncio.wait(waiting, timeout=grace)
        for conn in list(self._connections):
            conn.shutdown()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._no_connections.wait()
        except TimeoutError:
            for conn in list(self._connections):
                conn.abort()
            log.warning("aborted %d clients that did not close", len(self._connections))
        for listener in (*self._listeners, *self._tls_listeners):
            await listener.wait_closed()
        self._stopped.set()
        log.info("stopped")


async def run(
    host: Host,
    *,
    config: ListenerConfig | None = None,
    on_started: Callable[[Server], None] | None = None,
    data_dir: Path | None = None,
    **overrides: Any,
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully and close host and store.
    Libraries (and, with `data_dir`, the embedded store's data) are loaded first and kept.
    `overrides`: the keyword arguments of `Server` (bind, port, requirepass, ...)."""
    server = Server(host, config=config, **overrides)
    persistence = Persistence(host, data_dir)
    server.ctx.persistence = persistence
    loop = asyncio.get_running_loop()
    await persistence.start()
    await host.start_triggers()  # a real Redis: keyspace notifications and the trigger lease
    await server.start()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, _on_signal, server, signum)
    try:
        if on_started is not None:
            on_started(server)
        await server.serve_forever()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await server.shutdown()
        await persistence.stop()
        host.close()
        await host.store.aclose()


def tune_gc_for_serving() -> None:
    """What exists once the server has started (modules, the command table, the libraries)
    lives as long as the server: move it out of the collector's scans (`gc.freeze`), and collect
    the young garbage of requests less often (`SERVING_GC_THRESHOLDS`). Reference counting
    frees almost everything at once anyway; the collector is only there for cycles."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


#: ``uvloop`` here runs `jshost serve` on uvloop's event loop (when it is installed: `pip install
#: uvloop`); anything else, or unset, on asyncio's own.
EVENT_LOOP_ENV = "JSHOST_EVENT_LOOP"


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `jshost serve` runs on (`EVENT_LOOP_ENV`); None: asyncio's default."""
    if os.environ.get(EVENT_LOOP_ENV, "").strip().lower() != "uvloop":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional, and only asked for here
    except ImportError:
        log.warning("%s=uvloop, but uvloop is not installed: using asyncio's loop", EVENT_LOOP_ENV)
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def tls_context(config: ListenerConfig) -> ssl.SSLContext:
    """The TLS listener's context, with redis-server's meanings: the server certificate and
    key, and client certificates required (``tls-auth-clients yes``), checked when sent
    (``optional``) or not asked for (``no``), against ``tls-ca-cert-file``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # Redis's default tls-protocols
    context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    if config.tls_ca_cert_file:
        context.load_verify_locations(cafile=config.tls_ca_cert_file)
    context.verify_mode = {
        "yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE,
    }[config.tls_auth_clients]
    return context


def peer_host(transport: asyncio.BaseTransport) -> str | None:
    """The client's IP address as text (None for a Unix socket, which is local)."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


def _on_signal(server: Server, signum: int) -> None:
    log.info("received %s", signal.Signals(signum).name)
    server.request_shutdown()
