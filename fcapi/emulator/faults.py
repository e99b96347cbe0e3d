"""Fault knobs: what can go wrong on purpose, so that clients' error handling is tested.

One `Faults` model serves both servers. The HTTP knobs (latency, 5xx, 429 bursts) act on the
server they are set on; the run knobs (`app_fail`, `app_hang`, `die_mid_run`) name a site
(or `*` for all) and act at that site's controller, whether set on the site server (passed
to controllers with the run) or on the controller itself.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0, description="added to every API request")
    error_rate: float = Field(0.0, ge=0, le=1, description="fraction of requests answered 5xx")
    error_status: int = Field(503, ge=500, le=599)
    seed: int = Field(0, description="seeds the 5xx draw, so a test run is repeatable")
    burst_429: int = Field(0, ge=0, description="the next N API requests get 429")
    retry_after: float = Field(1.0, ge=0, description="Retry-After seconds sent with a 429")
    access_lifetime: float = Field(300.0, gt=0, description="access token lifetime, seconds")
    app_fail: str | None = Field(None, description="site name (or *) whose app fails")
    app_hang: str | None = Field(None, description="site name (or *) whose app never finishes")
    die_mid_run: str | None = Field(None, description="site name (or *) whose controller exits")


def names_site(knob: str | None, site_name: str) -> bool:
    """Whether a run knob (`*` or a site name) applies to `site_name`."""
    return knob is not None and (knob == "*" or knob == site_name)


class FaultState:
    """The live knobs of one server plus the deterministic machinery behind them."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)

    def update(self, changes: dict[str, Any]) -> Faults:
        """Merge `changes` into the knobs (PUT is a partial update); reseeds the 5xx draw."""
        self.faults = Faults.model_validate({**self.faults.model_dump(), **changes})
        self._rng = random.Random(self.faults.seed)
        return self.faults

    def take_429(self) -> bool:
        if self.faults.burst_429 > 0:
            self.faults.burst_429 -= 1
            return True
        return False

    def draw_5xx(self) -> bool:
        return self.faults.error_rate > 0 and self._rng.random() < self.faults.error_rate
