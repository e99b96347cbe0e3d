"""A record of every website request, for politeness checks, metrics and benchmarks.

The runner reports how many requests a workflow cost, by endpoint, and the benchmark checks
that no user ever exceeded the rate the site can rely on; both read this one record instead
of counting on their own.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")


def template_path(path: str) -> str:
    """`/api/projects/17/` -> `/api/projects/{id}/`, so that counts group by endpoint."""
    path = path.split("?", 1)[0]
    return _NUMERIC_SEGMENT.sub("/{id}", path)


def endpoint_key(method: str, path: str) -> str:
    """The key requests are counted under: `"PUT /api/projects/{id}/"`."""
    return f"{method.upper()} {template_path(path)}"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    user: str | None
    method: str
    endpoint: str
    status: int
    """HTTP status; 0 when no answer came (transport error)."""
    at: float
    """`time.monotonic()` when the request was sent."""


class RequestStats:
    """Every website request of a process (or of a pool), in the order they were sent."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def record(self, user: str | None, method: str, endpoint: str, status: int, at: float) -> None:
        self.records.append(
            RequestRecord(user, method.upper(), template_path(endpoint), status, at)
        )

    @property
    def total(self) -> int:
        return len(self.records)

    def by_endpoint(self) -> dict[str, int]:
        return dict(Counter(f"{r.method} {r.endpoint}" for r in self.records))

    def by_user(self) -> dict[str, int]:
        return dict(Counter(r.user or "" for r in self.records))

    def by_status(self) -> dict[int, int]:
        return dict(Counter(r.status for r in self.records))

    def max_rate(self, window: float = 1.0) -> dict[str, float]:
        """Per user, the most requests sent inside any half-open window `[t, t + window)`,
        divided by the window.

        With a token bucket of rate r and burst b this is at most `r + (b - 1) / window`
        (the burst rides on top of the rate), and tends to r as the window grows.
        """
        if window <= 0:
            raise ValueError("window must be positive")
        times: dict[str, list[float]] = {}
        for r in self.records:
            times.setdefault(r.user or "", []).append(r.at)
        result: dict[str, float] = {}
        for user, ts in times.items():
            ts.sort()
            best = 0
            lo = 0
            for hi, t in enumerate(ts):
                while t - ts[lo] >= window:
                    lo += 1
                best = max(best, hi - lo + 1)
            result[user] = best / window
        return result

    def over_limit(self, rate: float, burst: int) -> dict[str, float]:
        """Per user, the most requests beyond what a token bucket of `rate`/s and `burst`
        admits in any interval: max over i <= j of (j - i + 1) - burst - rate * (t_j - t_i).

        Zero or less means the user never went over the limit, however the requests were
        spread; unlike `max_rate`, this does not count a legitimate burst as excess.
        """
        times: dict[str, list[float]] = {}
        for r in self.records:
            times.setdefault(r.user or "", []).append(r.at)
        result: dict[str, float] = {}
        for user, ts in times.items():
            ts.sort()
            # max over j of (j - burst - rate*t_j) + max over i <= j of (1 - i + rate*t_i)
            best_start = float("-inf")
            worst = float("-inf")
            for j, t in enumerate(ts):
                best_start = max(best_start, 1 - j + rate * t)
                worst = max(worst, j - burst - rate * t + best_start)
            result[user] = worst
        return result
