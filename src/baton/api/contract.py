"""The OpenAPI document as the contract: bodies, the bearer scheme and every error.

Routes read their bodies themselves (after authentication, see `authn`), so FastAPI
cannot see them: the JSON bodies come from each route's `parsed(Model)` dependency and
the receivers' from their msgspec structs (`receiver_body`, given as `openapi_extra`).
Every operation lists the errors it can answer, all in the one shape `Error`, and every
one but the public paths needs the bearer token. Clients and fuzzers (schemathesis on
CI) read all of it from /openapi.json.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from baton.api.authn import PUBLIC, SIGNED
from baton.api.errors import ErrorBody
from baton.sense import receivers

REF = "#/components/schemas/{model}"
_RECEIVER_TYPES: dict[str, Any] = {
    "alertmanager-api": list[receivers.Alert] | receivers.AlertList,
    "alertmanager-webhook": receivers.Notification,
    "grafana": receivers.Notification,
    "pagerduty": receivers.PagerDutyEvent,
    "generic": list[receivers.GenericEvent] | receivers.GenericBatch,
}
_RECEIVER_SCHEMAS, _RECEIVER_COMPONENTS = msgspec.json.schema_components(
    list(_RECEIVER_TYPES.values()), ref_template="#/components/schemas/{name}"
)
_BY_FORMAT = dict(zip(_RECEIVER_TYPES, _RECEIVER_SCHEMAS, strict=True))

WHY = {
    400: "Malformed or out-of-bounds body; the message names the field",
    401: "Missing, unknown or revoked bearer token (answered before the body is read)",
    403: "The token's role lacks the permission",
    404: "No such resource",
    408: "The body arrived too slowly",
    409: "Not allowed in the current state",
    413: "Body over the size limit",
    422: "Invalid parameter or body; the message names it",
    503: "Not ready, or too many bodies in flight (see Retry-After)",
}


def receiver_body(*formats: str) -> dict[str, Any]:
    """`openapi_extra` declaring the raw JSON body a receiver of `formats` accepts."""
    schemas = [_BY_FORMAT[f] for f in formats]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


def _body_model(route: APIRoute) -> Any:
    """The model a route's `parsed(...)` dependency validates its body against, if any."""
    pending = list(route.dependant.dependencies)
    while pending:
        dep = pending.pop()
        model = getattr(dep.call, "body_model", None)
        if model is not None:
            return model
        pending.extend(dep.dependencies)
    return None


def _schema_of(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(model).json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    return schema


def _errors(path: str, method: str, op: dict[str, Any]) -> list[int]:
    codes = [401] if path in SIGNED else [] if path in PUBLIC else [401, 403]
    params = {p["in"] for p in op.get("parameters", [])}
    if "path" in params:
        codes += [404, 422]
    if "query" in params:
        codes.append(422)
    if "requestBody" in op:
        codes += [400, 408, 413, 422, 503]
    if method in ("post", "put", "delete"):
        codes.append(409)
    if path == "/readyz":
        codes.append(503)
    return sorted(set(codes))


def document(app: FastAPI, routers: list[APIRouter]) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)  # FastAPI's 422 shape; ours is Error
    components.update(_RECEIVER_COMPONENTS)
    components.update(ErrorBody.model_json_schema(ref_template=REF).pop("$defs", {}))
    components["Error"] = ErrorBody.model_json_schema(ref_template=REF)
    components["Error"].pop("$defs", None)
    doc["components"]["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from `baton token create` or POST /api/v1/tokens",
        }
    }
    doc["security"] = [{"bearer": []}]
    bodies = {
        (route.path, method.lower()): model
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and (model := _body_model(route)) is not None
        for method in route.methods
    }
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            model = bodies.get((path, method))
            if model is not None and "requestBody" not in op:
                content = {"application/json": {"schema": _schema_of(model, components)}}
                op["requestBody"] = {"required": True, "content": content}
            if path == "/metrics":
                op["security"] = [{"bearer": []}, {}]  # public when metrics_public is set
            elif path in PUBLIC:
                op["security"] = []
            responses = op.setdefault("responses", {})
            for code in _errors(path, method, op):
                responses[str(code)] = {
                    "description": WHY[code],
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
    return doc


def install(app: FastAPI, routers: list[APIRouter]) -> None:
    """Serve `document(app, routers)` as /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, routers)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
