"""A wire-compatible emulator of FeatureCloud.ai: the website, per-site controllers and apps.

Tests, demos and benchmarks run against it because the real platform needs Docker, a GUI
and the internet. Contract: `reference/featurecloud.md`; names others call: docs/CONTRACTS.md.

Processes::

    python -m fcapi.emulator site --host 127.0.0.1 --port 0 [--state FILE] [fault flags]
    python -m fcapi.emulator controller --site-url URL --data-dir DIR --port 0 [--pid-file F]

With `--port 0` the first stdout line is `fcapi-emulator <kind> listening on http://H:P`.
SIGTERM stops either gracefully with exit status 0.

The website (FastAPI) serves the OpenAPI document of the FeatureCloud API at `/openapi.json`
and its browsable form at `/docs`; `python -m fcapi.emulator openapi` prints the same
document, committed as docs/featurecloud-openapi.json. Controllers stay plain Starlette:
a benchmark starts a hundred of them on two cores.

In-process (`fcapi.emulator.serve`): `running_site(host, port, *, state=None, faults=None)`
and `running_controller(site_url, data_dir, host, port, *, faults=None, run_timeout=3600,
watch_timeout=86400)`, async context managers yielding `RunningServer` (`.url`, `.context`,
`.data_dir`).

Fault knobs (`Faults`, by CLI flag or `GET|PUT /_emulator/faults` on either server, PUT
merges): `latency_ms`, `error_rate` + `error_status` + `seed` (deterministic 5xx),
`burst_429` + `retry_after`, `access_lifetime`, and the run knobs `app_fail`, `app_hang`,
`die_mid_run`, each naming a site (or `*`). `GET|DELETE /_emulator/requests` counts requests
by `"METHOD /templated/path/"`, by user and by status.

Engine apps (`fcapi.emulator.engine`): an app folder on FeatureCloud's engine, registered
under a slug and an id (`--app SLUG=ID:DIR`, or apps.json in a controller's data dir), runs as
its own process in private namespaces and is driven over the app API; `python -m
fcapi.emulator test APP_DIR --site DIR ...` runs one across sites offline.

Relay (internal, `/api/_emulator/relay/...` on the site, authenticated by the site token
from site_info.json): a controller that finalized long-polls its project until it runs; each
app message is posted to the site, which routes it (coordinator -> all participants,
participant -> coordinator, or an explicit destination) into per-site inboxes that
controllers long-poll; controllers report running/finished/error per run.
"""
