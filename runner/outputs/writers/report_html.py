"""report.html: the page a researcher opens to see how the run went."""

from __future__ import annotations

from pathlib import Path

from fcapi.files import write_atomic
from runner.outputs.report import render_report
from runner.outputs.results import read_results
from runner.outputs.writers.base import OutputContext, Writer


class ReportHtml(Writer):
    name = "report"
    file = "report.html"

    def write(self, context: OutputContext) -> Path:
        path = self.path(context)
        results = read_results(context.run_dir, context.metrics)
        write_atomic(path, render_report(context.metrics, results=results))
        return path
