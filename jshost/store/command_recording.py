"""Recording the bundled command table from a real Redis (a dev-time tool).

`python -m jshost.store.command_recording PORT > jshost/store/redis_commands.json` asks the Redis
on PORT for `COMMAND` and writes it with jshost's Redis 7.2 patches applied
(`command_table.apply_redis_72_patches`)."""

from __future__ import annotations

import json
import sys
from typing import Any

from jshost.store.command_table import _REDIS_72_PATCHES, CommandTable, apply_redis_72_patches


def record_from_redis(host: str = "127.0.0.1", port: int = 6379) -> dict[str, Any]:
    """Record a real Redis' `COMMAND` as the bundled data file's content (7.2 patches applied).

    Usage: `python -m jshost.store.command_recording PORT > jshost/store/redis_commands.json`.
    """
    import redis  # a dev-time tool: keep redis-py out of the import path of the table

    client = redis.Redis(host=host, port=port, protocol=3)
    conn = client.connection_pool.get_connection()
    try:
        # Raw read: redis-py's COMMAND callback reshapes the reply (send_command is unannotated).
        conn.send_command("COMMAND")  # type: ignore[no-untyped-call]
        reply = conn.read_response()
        version = client.info("server")["redis_version"]
    finally:
        client.connection_pool.release(conn)
        client.close()
    table = CommandTable.from_command_reply(reply, add_host_commands=False)
    return {
        "source": f"COMMAND of redis-server {version}, with jshost's Redis 7.2 patches",
        "patches": _REDIS_72_PATCHES,
        "commands": apply_redis_72_patches(table.to_reply()),
    }


if __name__ == "__main__":  # pragma: no cover - dev tool
    data = record_from_redis(port=int(sys.argv[1]) if len(sys.argv) > 1 else 6379)
    # One command per line: small diffs when the file is regenerated.
    head = {k: v for k, v in data.items() if k != "commands"}
    lines = [json.dumps(e, separators=(",", ":")) for e in data["commands"]]
    body = ",\n".join(lines)
    sys.stdout.write(json.dumps(head)[:-1] + ', "commands": [\n' + body + "\n]}\n")
