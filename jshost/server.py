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
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from jshost.commands.dispatch import Dispatcher, ServerContext
from jshost.connection import PUBSUB_OUTPUT_BUFFER_LIMIT, Connection, OutputBufferLimit
from jshost.host import Host
from jshost.persistence import Persistence
from jshost.resp import CLIENT_QUERY_BUFFER_LIMIT

log = logging.getLogger("jshost.server")

#: How long shutdown waits for closed connections to go before aborting them (seconds).
CLOSE_TIMEOUT = 5.0

#: The cyclic garbage collector's thresholds while serving (Python's default: 700, 10, 10).
#: A request allocates a few short-lived containers (argument lists, futures), so with the
#: default a young collection ran every few dozen requests and an older one every few hundred.
SERVING_GC_THRESHOLDS = (10_000, 20, 20)


class Server:
    """A Redis-protocol (RESP2 and RESP3) server in front of one `Host`."""

    def __init__(
        self,
        host: Host,
        *,
        bind: str = "127.0.0.1",
        port: int = 6379,
        requirepass: str | None = None,
        redis_version: str = "7.2.4",
        client_query_buffer_limit: int = CLIENT_QUERY_BUFFER_LIMIT,
        pubsub_output_buffer_limit: OutputBufferLimit = PUBSUB_OUTPUT_BUFFER_LIMIT,
    ) -> None:
        if client_query_buffer_limit < 1:
            raise ValueError("client_query_buffer_limit must be positive")
        self.host = host
        self.bind = bind
        self.requested_port = port
        #: Unprocessed request bytes one client may have buffered before it is disconnected
        #: (Redis's client-query-buffer-limit): caps the memory a slow or hostile client holds.
        self.client_query_buffer_limit = client_query_buffer_limit
        #: Unsent output a pub/sub client may pile up (Redis's client-output-buffer-limit).
        self.pubsub_output_buffer_limit = pubsub_output_buffer_limit
        self.ctx = ServerContext(
            host=host,
            requirepass=requirepass,
            redis_version=redis_version,
            request_shutdown=self.request_shutdown,
        )
        self.dispatcher = Dispatcher(self.ctx)
        self._connections: set[Connection] = set()
        self._listener: asyncio.Server | None = None
        self._stopped = asyncio.Event()
        self._no_connections = asyncio.Event()
        self._no_connections.set()
        self._shutdown_task: asyncio.Task[None] | None = None

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start accepting clients (raises OSError if the address is taken)."""
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            self._new_connection, self.bind, self.requested_port, reuse_address=True
        )
        log.info("listening on %s:%d", self.bind, self.port)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        if self._listener is None or not self._listener.sockets:
            raise RuntimeError("the server is not listening")
        return int(self._listener.sockets[0].getsockname()[1])

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

    def _new_connection(self) -> Connection:
        return Connection(
            self.ctx,
            self.dispatcher,
            self._opened,
            self._closed,
            query_buffer_limit=self.client_query_buffer_limit,
            pubsub_output_limit=self.pubsub_output_buffer_limit,
        )

    def _opened(self, conn: Connection) -> None:
        if self.stopping:  # accepted just before the listener closed
            conn.abort()
            return
        self._connections.add(conn)
        self._no_connections.clear()

    def _closed(self, conn: Connection) -> None:
        self._connections.discard(conn)
        if not self._connections:
            self._no_connections.set()

    async def _shutdown(self, grace: float) -> None:
        log.info("shutting down (%d clients connected)", len(self._connections))
        if self._listener is not None:
            self._listener.close()
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
        if self._listener is not None:
            await self._listener.wait_closed()
        self._stopped.set()
        log.info("stopped")


async def run(
    host: Host,
    *,
    bind: str = "127.0.0.1",
    port: int = 6379,
    requirepass: str | None = None,
    on_started: Callable[[Server], None] | None = None,
    data_dir: Path | None = None,
    client_query_buffer_limit: int = CLIENT_QUERY_BUFFER_LIMIT,
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully and close host and store.
    Libraries (and, with `data_dir`, the embedded store's data) are loaded first and kept."""
    server = Server(
        host,
        bind=bind,
        port=port,
        requirepass=requirepass,
        client_query_buffer_limit=client_query_buffer_limit,
    )
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


def _on_signal(server: Server, signum: int) -> None:
    log.info("received %s", signal.Signals(signum).name)
    server.request_shutdown()
