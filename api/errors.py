"""One JSON error shape for every answer that is not a success.

`{"error": {"code": "...", "message": "...", "details": [...]}}`: FastAPI's own validation
errors, 404/405 from routing and unhandled exceptions are all rewritten into it.
"""

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from core.errors import InputError, invalid, loc_path
from core.storage.base import disk_full

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """One problem of a request."""

    loc: str = Field(description="Where: `items[3].title`, `query.state`, `file`; empty for all.")
    message: str


class Error(BaseModel):
    """What went wrong, as every route answers it (the body's `error`)."""

    code: str = Field(
        description="Stable, for programs: `validation_error`, `invalid_csv`, `invalid_cursor`, "
        "`malformed_json`, `malformed_multipart`, `unauthorized`, `not_found`, `not_ready`, "
        "`conflict`, `idempotency_conflict`, `too_large`, `too_many_items`, `value_too_large`, "
        "`storage_quota_exceeded`, `gone`, "
        "`unsupported_media_type`, "
        "`method_not_allowed`, `rate_limited`, `run_in_progress`, `insufficient_storage`, "
        "`internal_error`."
    )
    message: str = Field(description="For people: what happened and what to do next.")
    details: list[ErrorDetail] = Field(description="Every problem found; may be empty.")


class ErrorBody(BaseModel):
    """The body of every answer that is not a success."""

    error: Error


class ApiError(Exception):
    """An answer the client can act on: status, a stable code, a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details or [])
        self.headers = headers


class NotFound(ApiError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not_found", f"{what} not found")


class Conflict(ApiError):
    def __init__(self, message: str, code: str = "conflict") -> None:
        super().__init__(409, code, message)


def error_body(code: str, message: str, details: Sequence[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details or [])}}


def _sentence(message: str) -> str:
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


def validation_error(
    details: Sequence[dict[str, Any]], code: str = "validation_error", status: int = 422
) -> ApiError:
    """A 422 whose message names the first problem and counts the rest."""
    error = invalid(details, code, status)
    return ApiError(status, code, error.message, error.details)


def pydantic_details(
    errors: Iterable[Any], prefix: Sequence[str | int] = (), skip: int = 0
) -> list[dict[str, Any]]:
    """Pydantic error dicts as `{"loc": "items[3].title", "message": "field required"}`."""
    details = []
    for error in errors:
        loc = tuple(error.get("loc", ()))[skip:]
        message = str(error.get("msg", "invalid value"))
        message = message.removeprefix("Value error, ")
        details.append({"loc": loc_path((*prefix, *loc)), "message": _sentence(message)})
    return details


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details), exc.status, headers=exc.headers
    )


async def _input_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputError)
    return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = pydantic_details(exc.errors())
    if not details:
        details = [{"loc": "", "message": "the request is invalid"}]
    error = validation_error(details)
    return JSONResponse(error_body(error.code, error.message, error.details), error.status)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def _leaf_routes(routes: Iterable[Any]) -> Iterator[Route]:
    """The app's endpoints, through included routers (`original_router`) and mounts."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        else:
            inner = getattr(route, "original_router", route)
            yield from _leaf_routes(getattr(inner, "routes", ()))


def _allowed_methods(request: Request) -> list[str]:
    """Every method of every route on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in _leaf_routes(request.app.router.routes):
        if route.methods and route.path_regex.match(request.url.path):
            methods |= route.methods
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.detail else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route matches {request.method} {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return JSONResponse(error_body(code, message), exc.status_code, headers=headers)


def insufficient_storage() -> JSONResponse:
    return JSONResponse(
        error_body(
            "insufficient_storage",
            "the server has no room left to store this; nothing of it was kept. Try again "
            "later, and tell the operator the server's disk is full",
        ),
        507,
        headers={"Retry-After": "600"},
    )


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    if disk_full(exc):
        log.error("disk full on %s %s: %s", request.method, request.url.path, exc)
        return insufficient_storage()
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        error_body("internal_error", "an internal error occurred; it has been logged, try again"),
        500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
