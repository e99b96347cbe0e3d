"""What a run leaves behind, and what the terminal shows while it runs.

`writers` is the extension point: a registry of outputs (metrics.json, report.html, ...,
manifest.json last) each built from one context. `metrics`, `manifest`, `report` and `timeline`
are the pure functions they write from, so every output is tested without a run. `progress`
is the live view.
"""
