"""The OpenAPI document of the FeatureCloud API, as the emulated website serves it.

FeatureCloud.ai publishes none; this one is generated from the emulator's routes and models,
so it says what `reference/featurecloud.md` says and what the emulator answers. It is committed
as `docs/featurecloud-openapi.json` (`python -m fcapi.emulator openapi` regenerates it) and a
test keeps the two in sync.

Handlers read their JSON bodies themselves (see `webapi`), so FastAPI does not see the body
models: `request_body` hands one to the document through the route's `openapi_extra`, and
`document` moves its schema into `components`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

REF = "#/components/schemas/{model}"
_SCHEMAS = "x-fcapi-schemas"  # carries a body's schemas from `request_body` to `document`
#: FastAPI documents a 422 with these; the website answers a bad parameter 400 (`webapi`)
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a route whose handler parses `model` from its JSON body."""
    schema = model.model_json_schema(ref_template=REF)
    defs = schema.pop("$defs", {})
    ref = {"$ref": REF.format(model=model.__name__)}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
        _SCHEMAS: {model.__name__: schema, **defs},
    }


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built once: bodies' schemas in `components`, no 422s."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            separate_input_output_schemas=False,
        )
        schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
        for item in doc["paths"].values():
            for operation in item.values():
                operation["responses"].pop("422", None)
                for name, schema in operation.pop(_SCHEMAS, {}).items():
                    if schemas.setdefault(name, schema) != schema:
                        raise ValueError(f"two different schemas are named {name!r}")
        for name in _FASTAPI_422:
            schemas.pop(name, None)
        doc["components"]["schemas"] = dict(sorted(schemas.items()))
        app.openapi_schema = doc
    return app.openapi_schema


def render(app: FastAPI) -> str:
    """The document as committed: indented, one trailing newline."""
    return json.dumps(document(app), indent=2, ensure_ascii=False) + "\n"
