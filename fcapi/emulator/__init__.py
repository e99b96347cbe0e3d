"""A wire-compatible emulator of FeatureCloud.ai: the website, per-site controllers and apps.

Tests, demos and benchmarks run against it because the real platform needs Docker, a GUI
and the internet. Start it with `python -m fcapi.emulator site|controller ...` or in-process
with `fcapi.emulator.serve.running_site` / `running_controller`.
"""
