"""Counters exposed at GET /metrics in the Prometheus text format."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    accepted: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    adjusted: Counter[str] = field(default_factory=Counter)
    forwarded_for_ignored: int = 0
    rejected: Counter[int] = field(default_factory=Counter)
    http_errors: Counter[str] = field(default_factory=Counter)
    connections_refused: int = 0

    def render(self, bytes_written: int) -> str:
        out = [
            "# HELP footfall_events_accepted_total Events written to the log.",
            "# TYPE footfall_events_accepted_total counter",
            f"footfall_events_accepted_total {self.accepted}",
            "# HELP footfall_events_dropped_total Events answered 202 but not kept, by reason.",
            "# TYPE footfall_events_dropped_total counter",
            *(f'footfall_events_dropped_total{{reason="{r}"}} {n}'
              for r, n in sorted(self.dropped.items())),
            "# HELP footfall_events_adjusted_total Beacons kept with a part dropped or changed, "
            "by reason.",
            "# TYPE footfall_events_adjusted_total counter",
            *(f'footfall_events_adjusted_total{{reason="{r}"}} {n}'
              for r, n in sorted(self.adjusted.items())),
            "# HELP footfall_forwarded_for_ignored_total Beacons whose X-Forwarded-For was "
            "ignored: the sender is not in collector.trusted_proxies.",
            "# TYPE footfall_forwarded_for_ignored_total counter",
            f"footfall_forwarded_for_ignored_total {self.forwarded_for_ignored}",
            "# HELP footfall_events_rejected_total Beacons refused, by HTTP status.",
            "# TYPE footfall_events_rejected_total counter",
            *(f'footfall_events_rejected_total{{status="{s}"}} {n}'
              for s, n in sorted(self.rejected.items())),
            "# HELP footfall_http_errors_total Errors aiohttp logged (malformed requests, 500s),"
            " by exception class.",
            "# TYPE footfall_http_errors_total counter",
            *(f'footfall_http_errors_total{{error="{e}"}} {n}'
              for e, n in sorted(self.http_errors.items())),
            "# HELP footfall_connections_refused_total Connections closed at once: over"
            " collector.max_connections.",
            "# TYPE footfall_connections_refused_total counter",
            f"footfall_connections_refused_total {self.connections_refused}",
            "# HELP footfall_log_bytes_written_total Bytes appended to the event logs.",
            "# TYPE footfall_log_bytes_written_total counter",
            f"footfall_log_bytes_written_total {bytes_written}",
        ]
        return "\n".join(out) + "\n"
