"""metrics.json, first: the record every later output (and any sweep) reads."""

from __future__ import annotations

from pathlib import Path

from runner.outputs.metrics import METRICS_FILE, write_metrics
from runner.outputs.writers.base import OutputContext, Writer


class MetricsJson(Writer):
    name = "metrics"
    file = METRICS_FILE

    def write(self, context: OutputContext) -> Path:
        return write_metrics(context.run_dir, context.metrics)
