"""The listener's security, as Redis does it: TLS (with a test CA made here), protected mode end
to end inside a network namespace made here, and passwords kept out of logs and replies.

Every server is a real `jshost serve` process (stopped by its PID). Traffic stays on loopback,
or inside the test's own network namespace: nothing binds the machine's own interfaces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis_server import REDIS_SERVER, RedisServer, free_port
from server_fixture import JshostProcess

from jshost.errors import ListenerErrors

pytestmark = pytest.mark.timeout(120)

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None,
                                   reason="openssl is not on PATH (it makes the test CA)")
needs_redis_cli = pytest.mark.skipif(shutil.which("redis-cli") is None,
                                     reason="redis-cli is not on PATH (CI installs redis-tools)")


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, both signed by
    the CA, and a client certificate signed by nobody the server trusts."""
    d = tmp_path_factory.mktemp("tls")
    files = {name: d / name for name in (
        "ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key",
        "stranger.crt", "stranger.key")}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=jshost test CA", "-keyout", files["ca.key"], "-out", files["ca.crt"])
    for name, subject, extension in (
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
        ("client", "/CN=client", "extendedKeyUsage=clientAuth"),
    ):
        csr = d / f"{name}.csr"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                "-keyout", files[f"{name}.key"], "-out", csr)
        ext = d / f"{name}.ext"
        ext.write_text(extension + "\n")
        openssl("x509", "-req", "-in", csr, "-CA", files["ca.crt"], "-CAkey", files["ca.key"],
                "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", files[f"{name}.crt"])
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=stranger", "-keyout", files["stranger.key"], "-out", files["stranger.crt"])
    return files


def tls_server(certificates: dict[str, Path], auth_clients: str) -> JshostProcess:
    return JshostProcess(
        "--port", str(free_port()), "--tls-port", str(free_port()),
        "--tls-cert-file", str(certificates["server.crt"]),
        "--tls-key-file", str(certificates["server.key"]),
        "--tls-ca-cert-file", str(certificates["ca.crt"]),
        "--tls-auth-clients", auth_clients,
    ).start()


def tls_client(port: int, certificates: dict[str, Path], cert: str | None) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(certificates["ca.crt"]),
        ssl_certfile=str(certificates[f"{cert}.crt"]) if cert else None,
        ssl_keyfile=str(certificates[f"{cert}.key"]) if cert else None,
        socket_timeout=10,
    )


# --- TLS --------------------------------------------------------------------------------------------


@needs_openssl
@needs_redis_cli
def test_tls_with_client_certificates(certificates: dict[str, Path]) -> None:
    """tls-auth-clients yes (Redis's default): a client certificate signed by the CA is
    required; redis-cli --tls and redis-py ssl=True work; the plain port still serves."""
    server = tls_server(certificates, "yes")
    try:
        assert server.tls_port
        cli = ["redis-cli", "-p", str(server.tls_port), "--tls",
               "--cacert", str(certificates["ca.crt"])]
        with_cert = [*cli, "--cert", str(certificates["client.crt"]),
                     "--key", str(certificates["client.key"])]
        done = subprocess.run([*with_cert, "SET", "k", "over tls"], capture_output=True,
                              text=True, timeout=30)
        assert done.stdout.strip() == "OK", done
        client = tls_client(server.tls_port, certificates, "client")
        assert client.get("k") == b"over tls"
        client.execute_command("RG.FUNCTION", "LOAD",
                               "#!js api_version=1.0 name=t\n"
                               "redis.register_function('hi', () => 'hi over tls');")
        assert client.execute_command("RG.FCALL", "t", "hi", "0") == b"hi over tls"
        assert client.config_get("tls-auth-clients") == {"tls-auth-clients": "yes"}
        assert client.config_get("tls-port") == {"tls-port": str(server.tls_port)}
        client.close()
        for cert in (None, "stranger"):  # no certificate, or one the CA did not sign
            refused = tls_client(server.tls_port, certificates, cert)
            with pytest.raises(redis.ConnectionError):
                refused.ping()
            refused.close()
        without = subprocess.run([*cli, "PING"], capture_output=True, text=True, timeout=30)
        assert "PONG" not in without.stdout
        plain = redis.Redis(port=server.port, socket_timeout=10)
        assert plain.get("k") == b"over tls"  # the same store behind both ports
        with pytest.raises(redis.ConnectionError):  # plain text on the TLS port
            redis.Redis(port=server.tls_port, socket_timeout=5).ping()
    finally:
        assert server.stop() == 0


@needs_openssl
def test_tls_without_client_certificates(certificates: dict[str, Path]) -> None:
    server = tls_server(certificates, "no")
    try:
        client = tls_client(server.tls_port, certificates, None)
        assert client.ping() is True
        client.close()
    finally:
        assert server.stop() == 0


@needs_openssl
def test_tls_options_that_cannot_work_are_refused_at_start(
    certificates: dict[str, Path], tmp_path: Path
) -> None:
    port = str(free_port())
    for args, text in (
        (["--tls-port", port], ListenerErrors.TLS_NEEDS_CERTIFICATE),
        (["--tls-port", port, "--tls-cert-file", str(certificates["server.crt"]),
          "--tls-key-file", str(certificates["server.key"])],
         ListenerErrors.TLS_NEEDS_CA.format(mode="yes")),
        (["--tls-port", port, "--tls-cert-file", str(tmp_path / "missing.crt"),
          "--tls-key-file", str(certificates["server.key"]), "--tls-auth-clients", "no"],
         "cannot use the TLS certificate files"),
    ):
        with pytest.raises(RuntimeError) as info:
            JshostProcess(*args).start()
        assert text in str(info.value)


# --- protected mode, end to end in a network namespace -----------------------------------------------


@pytest.fixture
def namespace() -> Iterator[str]:
    """A network namespace of the test's own: lo, and a veth pair whose two ends carry
    10.77.0.1 and 10.77.0.2 (both inside it, so no traffic leaves it)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make a network namespace")
    name = f"jshost-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        for command in (
            "link set lo up",
            "link add jsa type veth peer name jsb",
            "addr add 10.77.0.1/24 dev jsa",
            "addr add 10.77.0.2/24 dev jsb",
            "link set jsa up",
            "link set jsb up",
        ):
            subprocess.run(["ip", "-n", name, *command.split()], check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def cli_in(namespace: str, host: str, port: int, *command: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", namespace, "redis-cli", "-h", host,
                           "-p", str(port), *command], capture_output=True, text=True, timeout=30)
    return (done.stdout + done.stderr).strip()


@needs_redis_cli
def test_protected_mode_refuses_clients_off_loopback(namespace: str) -> None:
    """Bound to a non-loopback address without a password: a client from that network gets
    Redis's DENIED text (and the start logs a warning); a loopback client is served; with a
    password, or protected-mode no, the other network is served too."""

    def server(*args: str) -> JshostProcess:
        proc = JshostProcess("--host", "10.77.0.1 127.0.0.1", *args)
        proc.prefix = ("ip", "netns", "exec", namespace)
        return proc.start()

    protected = server()
    try:
        assert "PONG" == cli_in(namespace, "127.0.0.1", protected.port, "PING")
        answer = cli_in(namespace, "10.77.0.1", protected.port, "PING")
        assert ListenerErrors.PROTECTED_MODE in answer
        assert cli_in(namespace, "127.0.0.1", protected.port, "CONFIG", "GET",
                      "protected-mode") == "protected-mode\nyes"
        # CONFIG SET protected-mode no from loopback opens it, as Redis's text says.
        assert cli_in(namespace, "127.0.0.1", protected.port, "CONFIG", "SET",
                      "protected-mode", "no") == "OK"
        assert cli_in(namespace, "10.77.0.1", protected.port, "PING") == "PONG"
    finally:
        assert protected.stop() == 0
    assert "in protected mode" in protected.log() and "10.77.0.1" in protected.log()
    with_password = server("--requirepass", "pw")
    try:
        assert cli_in(namespace, "10.77.0.1", with_password.port, "-a", "pw", "--no-auth-warning",
                      "PING") == "PONG"
    finally:
        assert with_password.stop() == 0
    assert "protected mode" not in with_password.log()


# --- passwords ----------------------------------------------------------------------------------------

JSHOST_PASSWORD = "jshost-Secret-1"
CHANGED_PASSWORD = "jshost-Secret-3"
BACKEND_PASSWORD = "backend-Secret-2"


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")
def test_passwords_never_appear_in_logs_info_client_list_or_monitor() -> None:
    """jshost's password and the backend's never show in the debug log, INFO, CLIENT LIST /
    INFO, MONITOR or errors, through logins, failed logins, a password change and a backend
    restart; CONFIG GET requirepass shows jshost's own password, as Redis does."""
    backend = RedisServer(password=BACKEND_PASSWORD).start()
    seen: list[str] = []
    server = JshostProcess("-v", "--requirepass", JSHOST_PASSWORD, "--backend", backend.url)
    try:
        server.start()
        client = redis.Redis(port=server.port, password=JSHOST_PASSWORD, socket_timeout=10,
                             protocol=3)
        client.set("k", "v")
        for wrong in (redis.Redis(port=server.port, password="nope", socket_timeout=10),
                      redis.Redis(port=server.port, socket_timeout=10)):
            with pytest.raises(redis.AuthenticationError):
                wrong.ping()
        seen.append(str(client.info("everything")))
        seen.append(str(client.execute_command("CLIENT", "LIST")))
        seen.append(str(client.execute_command("CLIENT", "INFO")))
        config = client.config_get("*")
        assert config["requirepass"] == JSHOST_PASSWORD  # jshost's own, as Redis shows it
        seen.append(str({k: v for k, v in config.items() if k != "requirepass"}))
        with pytest.raises(redis.ResponseError) as monitor:
            client.execute_command("MONITOR")
        seen.append(str(monitor.value))
        client.config_set("requirepass", CHANGED_PASSWORD)
        again = redis.Redis(port=server.port, password=CHANGED_PASSWORD, socket_timeout=10)
        assert again.get("k") == b"v"
        backend.kill()  # its connections are lost and logged ...
        backend.start()  # ... and made again
        assert again.get("k") is None  # (a backend without persistence: empty)
        seen.append(str(again.info()))
        client.close()
        again.close()
    finally:
        server.stop()
        backend.stop()
    bad_url = subprocess.run(
        [*JshostProcess().command(), "--backend", f"redis://:{BACKEND_PASSWORD}@127.0.0.1:x"],
        capture_output=True, text=True, timeout=60)
    assert bad_url.returncode != 0 and "invalid backend Redis URL" in bad_url.stderr
    seen += [server.log(), bad_url.stderr, bad_url.stdout, server.startup_line]
    assert "lost" in server.log()  # the backend restart was logged
    for text in seen:
        for password in (JSHOST_PASSWORD, CHANGED_PASSWORD, BACKEND_PASSWORD):
            assert password not in text
