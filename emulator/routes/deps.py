"""Shared route pieces: envelopes, errors, the request gate (rate limit, header checks), auth."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from emulator.ratelimit import retry_after_header
from emulator.runtime import Emulator
from emulator.state import Session, Token

ATTRIBUTION_HEADERS = ("x-skill-source", "x-skill-version", "x-skill-platform")
NO_AUTH_PATHS = {"/api/auth/anonymous-token"}


def ok(data: Any, emulator: Emulator | None = None) -> dict[str, Any]:
    """The success envelope: `{"code": 0, ...}`, or `{"status": "success", ...}` under the
    status_envelope variant."""
    if emulator is not None and emulator.faults.profile.serves("status_envelope"):
        return {"status": "success", "data": data}
    return {"code": 0, "message": "success", "data": data}


class EnvelopeError(Exception):
    """An error told with HTTP 200 and `code != 0` (1001, 1002, 2001, 4001, 4002...)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class HttpError(Exception):
    """An error told with an HTTP status and a JSON body."""

    def __init__(
        self, status: int, body: Any, headers: dict[str, str] | None = None, *, raw: bool = False
    ) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.raw = raw
        """Always sent with its HTTP status (a download: no JSON client reads it)."""


async def envelope_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EnvelopeError)
    request.scope["emulator.code"] = exc.code
    return JSONResponse({"code": exc.code, "message": exc.message, "data": exc.data})


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HttpError)
    emulator: Emulator = request.app.state.emulator
    if emulator.faults.profile.serves("codes_in_200") and not exc.raw:
        return in_200_body(request, exc.status, exc.body, exc.headers)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def in_200_body(
    request: Request, status: int, body: Any, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error told as HTTP 200 with its status as `code` (the codes_in_200 variant)."""
    answer = dict(body) if isinstance(body, dict) else {"message": str(body)}
    message = answer.get("message") or answer.get("error") or answer.get("detail") or "error"
    code = answer.get("code") if isinstance(answer.get("code"), int) else status
    request.scope["emulator.code"] = code
    return JSONResponse({**answer, "code": code, "message": message, "data": None}, 200, headers)


def get_emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


EmulatorDep = Annotated[Emulator, Depends(get_emulator)]


def route_name(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def base_url(request: Request, emulator: Emulator) -> str:
    return emulator.config.public_url or str(request.base_url).rstrip("/")


async def gate(request: Request, emulator: EmulatorDep) -> None:
    """Every contract call: note missing headers, then the token bucket and random 429s."""
    name = route_name(request)
    if any(h not in request.headers for h in ATTRIBUTION_HEADERS):
        emulator.stats.missing_attribution[name] += 1
    token = bearer(request)
    if token is None and request.url.path not in NO_AUTH_PATHS:
        emulator.stats.missing_auth[name] += 1
    caller = token or (request.client.host if request.client else "unknown")
    wait = emulator.limiter.acquire(caller)
    if wait > 0:
        emulator.faults.record("rate_limit")
        raise _too_many(wait)
    profile = emulator.faults.profile
    if emulator.faults.chance("random_429", profile.random_429_rate, name):
        raise _too_many(emulator.config.scaled(profile.random_429_retry_after_s))
    body_429_rate = profile.variant_rate / 3 if profile.serves("codes_in_200") else 0.0
    if emulator.faults.chance("body_429", body_429_rate, name):
        with_header = emulator.faults.rng("body_429_header", name).random() < 0.5
        wait = emulator.config.scaled(profile.random_429_retry_after_s)
        raise _too_many(wait if with_header else None)


def _too_many(wait_s: float | None) -> HttpError:
    body = {"code": 429, "message": "Too many requests: retry later"}
    headers = {"Retry-After": retry_after_header(wait_s)} if wait_s is not None else {}
    return HttpError(429, body, headers)


def authenticate(emulator: Emulator, request: Request) -> Token:
    """The caller's valid token, or code 1001; anonymous tokens may expire by fault."""
    check, token = emulator.store.check_token(bearer(request))
    if check == "valid" and token is not None:
        rate = emulator.faults.profile.token_expiry_rate
        is_anonymous = emulator.store.account_kind(token.user_id) == "anonymous"
        if is_anonymous and emulator.faults.chance("token_expiry", rate, token.user_id):
            emulator.store.expire_tokens_of(token.user_id)
            check = "expired"
    if check != "valid" or token is None:
        raise EnvelopeError(1001, f"Token {check}: acquire a new token")
    return token


def current_token(request: Request, emulator: EmulatorDep) -> Token:
    return authenticate(emulator, request)


TokenDep = Annotated[Token, Depends(current_token)]


def check_user_segment(user: str, token: Token) -> None:
    if user not in ("me", token.user_id):
        raise EnvelopeError(1002, "Session not found for this user")


def find_session(emulator: Emulator, session_id: str, token: Token) -> Session | None:
    """The caller's session, unless unknown, someone else's, or lost (by fault)."""
    session = emulator.store.session_for(session_id, token.user_id)
    if session is None:
        return None
    rate = emulator.faults.profile.session_loss_rate
    if not session.turn_running and emulator.faults.chance("session_loss", rate, session_id):
        emulator.store.lose_session(session_id)
        return None
    return session


def require_session(emulator: Emulator, session_id: str, token: Token) -> Session:
    session = find_session(emulator, session_id, token)
    if session is None:
        raise EnvelopeError(1002, f"Session not found: {session_id}")
    return session
