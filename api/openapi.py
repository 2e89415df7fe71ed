"""The OpenAPI document as a generated client reads it.

Routes that read their own body (CSV beside JSON, streamed uploads) describe it by `$ref` to a
component; `install_openapi` puts those models, and what they refer to, in the document's
components, so every reference resolves. Every error status is documented with `ErrorBody`.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.errors import ErrorBody
from core.prompts import PLACEHOLDERS

COMPONENT_REF = "#/components/schemas/{model}"

_ERRORS = {
    400: "The body is malformed: JSON that does not parse, a multipart body cut short.",
    401: "The API key is missing, not valid or revoked.",
    404: "Nothing with this id belongs to the tenant of the API key.",
    409: "The resource is not in a state that allows this.",
    410: "The file was deleted by the retention policy (RETENTION_DAYS); the message says when.",
    413: "The body or the file is larger than the server's limit, or (code "
    "`storage_quota_exceeded`) the file does not fit the tenant's storage quota.",
    415: "The body is not of a content type this route reads.",
    422: "The request is invalid; `details` names every problem.",
    429: "The tenant sent too many writes, or has too many running; wait `Retry-After` seconds.",
    507: "The server's disk is full; nothing of the request was kept. Try again later.",
    503: "The database or the broker does not answer.",
}

Responses = dict[int | str, dict[str, Any]]

_URL = "https?://(\\[[0-9A-Fa-f:.]+\\]|[^\\s/?#\\[\\]])"
_UUID = "[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}"
_HTTP_URL = {
    "pattern": f"^{_URL}",
    "description": "An http(s) URL; a literal private or loopback address is refused.",
}
_MEDIA = {
    "pattern": f"^({_UUID}$|{_URL})",
    "description": "An asset id from POST /v1/assets, or an http(s) URL.",
}
_PLACEHOLDERS = "|".join(PLACEHOLDERS)
_TEMPLATE = {"pattern": "^([^{}]|\\{\\{|\\}\\}|\\{(" + _PLACEHOLDERS + ")\\})*$"}
_RULES: dict[str, dict[str, dict[str, Any]]] = {
    "BatchIn": {"webhook_url": _HTTP_URL, "prompt_template": _TEMPLATE},
    "ItemIn": {"images": _MEDIA, "clips": _MEDIA, "music": _MEDIA},
    "ScheduleIn": {"webhook_url": _HTTP_URL, "source_url": _HTTP_URL, "prompt_template": _TEMPLATE},
    "ScheduleUpdate": {
        "webhook_url": _HTTP_URL,
        "source_url": _HTTP_URL,
        "prompt_template": _TEMPLATE,
    },
}
"""What `core.batch_input`'s validators check beyond types and lengths (URLs, asset ids and
URLs, prompt placeholders), said in JSON Schema for the document's readers."""


def _refine(schema: dict[str, Any], rule: dict[str, Any]) -> None:
    """Add `rule` to the string in `schema`: itself, its non-null case, or its array's items."""
    for case in schema.get("anyOf", [schema]):
        target = case.get("items", case)
        if target.get("type") == "string":
            target.update(rule)


def _document_rules(schemas: dict[str, Any]) -> None:
    for name, fields in _RULES.items():
        for field, rule in fields.items():
            _refine(schemas[name]["properties"][field], rule)


def errors(*statuses: int) -> Responses:
    """`responses=` for a route: each status with the shared error body."""
    return {status: {"model": ErrorBody, "description": _ERRORS[status]} for status in statuses}


def answer(status: int, model: type[BaseModel], description: str) -> Responses:
    """`responses=` for a success other than the route's own status."""
    return {status: {"model": model, "description": description}}


def links(status: int, parameter: str, value: str, *operation_ids: str) -> Responses:
    """`responses=` naming the operations an answer's `value` (a runtime expression such as
    `$response.body#/id`) can be passed to as `parameter`: for readers, generators and fuzzers."""
    return {
        status: {
            "links": {
                operation_id: {"operationId": operation_id, "parameters": {parameter: value}}
                for operation_id in operation_ids
            }
        }
    }


def file_responses(media_type: str) -> Responses:
    """A stored file served whole or, for a `Range` header, in part (as Starlette does)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        200: {"description": "The file.", "content": {media_type: binary}},
        307: {
            "description": "`?redirect=1` with object storage: a short-lived presigned URL of "
            "the file in `Location`.",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
        206: {
            "description": "The part named by the Range header.",
            "content": {media_type: binary},
        },
        400: {"description": "The Range header is malformed.", "content": text},
        416: {"description": "The Range is outside the file.", "content": text},
    }


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": COMPONENT_REF.format(model=model.__name__)}


def request_body(content: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`openapi_extra=` for a route that reads its body itself: media type -> media object."""
    return {"requestBody": {"required": True, "content": content}}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    return request_body({"application/json": {"schema": ref(model)}})


def _drop_fastapi_validation_errors(document: dict[str, Any]) -> None:
    """FastAPI documents a 422 of its own shape on every route with parameters; this app never
    sends that shape, and every route that can answer 422 says so with `ErrorBody`."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422", {})
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") == COMPONENT_REF.format(model="HTTPValidationError"):
                del operation["responses"]["422"]
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _document_internal_errors(document: dict[str, Any]) -> None:
    """Any route may fail unexpectedly; it answers 500 with the error body (`api.errors`)."""
    answer = {
        "description": "An unexpected error; it is logged on the server. Try again later.",
        "content": {"application/json": {"schema": ref(ErrorBody)}},
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault("500", answer)


WRITES = ("post", "put", "patch", "delete")
_RATE_HEADERS = {
    "Retry-After": "Seconds to wait before the next write.",
    "RateLimit-Policy": 'The tenant\'s write quota: `"writes";q=<writes>;w=60`.',
    "RateLimit": 'What is left of it: `"writes";r=<remaining>;t=<seconds to wait>`.',
}


def _document_write_limits(document: dict[str, Any]) -> None:
    """Every write of a tenant may be refused by its limits (`api.write_limits`)."""
    headers = {
        name: {
            "description": text,
            "schema": {"type": "integer" if name == "Retry-After" else "string"},
        }
        for name, text in _RATE_HEADERS.items()
    }
    answer = {
        "description": _ERRORS[429],
        "headers": headers,
        "content": {"application/json": {"schema": ref(ErrorBody)}},
    }
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            if method in WRITES:
                operation.setdefault("responses", {}).setdefault("429", answer)
                operation["responses"].setdefault(
                    "507",
                    {
                        "description": _ERRORS[507],
                        "content": {"application/json": {"schema": ref(ErrorBody)}},
                    },
                )


def install_openapi(app: FastAPI, body_models: tuple[type[BaseModel], ...]) -> None:
    """Serve FastAPI's document with `body_models` (validation schemas) among its components."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        _drop_fastapi_validation_errors(document)
        _document_internal_errors(document)
        _document_write_limits(document)
        _, defs = models_json_schema(
            [(model, "validation") for model in body_models], ref_template=COMPONENT_REF
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.get("$defs", {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise RuntimeError(f"two different schemas are named {name} in the document")
        _document_rules(schemas)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
