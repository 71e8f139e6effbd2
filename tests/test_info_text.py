"""INFO's text as data (jshost.commands.info_text) and jshost's counters
(jshost.commands.stats), on plain values."""

from __future__ import annotations

from jshost.commands.info_cmd import in_order, wanted_sections
from jshost.commands.info_text import Sections
from jshost.commands.stats import ServerStats
from jshost.store.embedded.server_commands import human

TEXT = b"# Server\r\nredis_version:7.0.15\r\ntcp_port:6380\r\n\r\n# Keyspace\r\ndb0:keys=1\r\n"


def test_parse_update_render_round_trip() -> None:
    info = Sections.parse(TEXT)
    assert info.titles() == ["Server", "Keyspace"]
    assert info.get("server") == {"redis_version": "7.0.15", "tcp_port": "6380"}
    assert info.render() == TEXT.decode()
    info.update("Server", [("tcp_port", 7000), ("run_id", "ab")])
    info.replace("Cluster", [("cluster_enabled", 0)])
    assert info.render(["server", "cluster"]) == (
        "# Server\r\nredis_version:7.0.15\r\ntcp_port:7000\r\nrun_id:ab\r\n\r\n"
        "# Cluster\r\ncluster_enabled:0\r\n"
    )
    assert Sections().render() == ""


def test_fields_merge_in_redis_order() -> None:
    theirs = {"gcc_version": "12", "redis_version": "7.0", "extra": "x"}
    ours = [("tcp_port", 1), ("redis_mode", "standalone")]
    order = ("redis_version", "redis_mode", "gcc_version", "tcp_port")
    assert [n for n, _ in in_order(theirs, ours, order)] == [
        "redis_version", "redis_mode", "gcc_version", "tcp_port", "extra"]


def test_wanted_sections() -> None:
    default = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
               "modules", "errorstats", "cluster", "keyspace"]
    assert wanted_sections([b"INFO"]) == (default, True)
    assert wanted_sections([b"INFO", b"keyspace", b"Server"]) == (["server", "keyspace"], False)
    assert wanted_sections([b"INFO", b"jshost"]) == ([], True)
    names, mine = wanted_sections([b"INFO", b"all"])
    assert "commandstats" in names and "latencystats" in names and mine
    assert wanted_sections([b"INFO", b"search"]) == (["search"], False)  # a module's, passed on


def test_human_sizes_as_redis() -> None:  # (the embedded store's INFO memory)
    assert [human(n) for n in (0, 1023, 1024, 1536, 5 << 20)] == [
        "0B", "1023B", "1.00K", "1.50K", "5.00M"]


def test_instantaneous_rates_over_the_samples() -> None:
    stats = ServerStats()
    assert stats.instantaneous() == (0, 0.0, 0.0)
    stats.sample(10.0, 100)
    stats.net_input_bytes, stats.net_output_bytes = 2048, 4096
    stats.sample(11.0, 600)
    assert stats.instantaneous() == (500, 2.0, 4.0)
    stats.connections_received = 3
    stats.reset()
    assert (stats.connections_received, stats.instantaneous()) == (0, (0, 0.0, 0.0))
