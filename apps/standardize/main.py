"""The image's entry point (`python3 -u /app/main.py`): the engine's routes on bottle.

The controller reaches `/api/...` through nginx on port 9000 (server_config/nginx); the
states register themselves with the engine when `states` is imported.
"""

import states  # noqa: F401  (registers the states)

# mypy: disable-error-code="import-not-found, import-untyped"
from bottle import Bottle
from FeatureCloud.app.api.http_ctrl import api_server
from FeatureCloud.app.api.http_web import web_server
from FeatureCloud.app.engine.app import app

server = Bottle()

if __name__ == "__main__":
    app.register()
    server.mount("/api", api_server)
    server.mount("/web", web_server)
    server.run(host="localhost", port=5000)
