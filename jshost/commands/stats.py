"""jshost's own counters for INFO's ``# Stats``: what its clients sent and got, and how fast.

The connections add to them (`net_input_bytes` as data arrives, `net_output_bytes` as replies
are written), the dispatcher counts commands (`ServerContext.commands_processed`) and the
server the connections it accepts. The instantaneous rates are Redis': the average over the
last 16 samples, one taken every 100 ms (`sample`, run by the server).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SAMPLES = 16  # Redis' STATS_METRIC_SAMPLES
SAMPLE_EVERY = 0.1  # seconds (Redis samples in serverCron, at hz 10)


@dataclass
class ServerStats:
    connections_received: int = 0
    net_input_bytes: int = 0
    net_output_bytes: int = 0
    #: Clients refused at once (maxclients, protected mode), counted by the server.
    rejected_connections: int = 0
    #: (time, commands, input bytes, output bytes) every SAMPLE_EVERY seconds.
    _samples: deque[tuple[float, int, int, int]] = field(
        default_factory=lambda: deque(maxlen=SAMPLES + 1)
    )

    def sample(self, now: float, commands: int) -> None:
        self._samples.append((now, commands, self.net_input_bytes, self.net_output_bytes))

    def instantaneous(self) -> tuple[int, float, float]:
        """Commands per second, input and output KiB per second, over the recent samples."""
        if len(self._samples) < 2:
            return 0, 0.0, 0.0
        (t0, c0, i0, o0), (t1, c1, i1, o1) = self._samples[0], self._samples[-1]
        elapsed = t1 - t0
        if elapsed <= 0:
            return 0, 0.0, 0.0
        return (round((c1 - c0) / elapsed), (i1 - i0) / elapsed / 1024,
                (o1 - o0) / elapsed / 1024)

    def reset(self) -> None:
        """CONFIG RESETSTAT."""
        self.connections_received = self.net_input_bytes = self.net_output_bytes = 0
        self.rejected_connections = 0
        self._samples.clear()
