"""Anonymous tokens, sessions, session state and the credit balance."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request

from emulator.routes.deps import (
    EmulatorDep,
    HttpError,
    TokenDep,
    check_user_segment,
    gate,
    ok,
    require_session,
)
from emulator.state import iso

router = APIRouter(dependencies=[Depends(gate)])
MAX_CLIENT_ID = 64


@router.post("/api/auth/anonymous-token")
async def anonymous_token(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    client_id = request.headers.get("x-client-id", "").strip()
    if not client_id or len(client_id) > MAX_CLIENT_ID:
        body = {"code": 400, "message": "X-Client-Id header required (a UUID, at most 64 chars)"}
        raise HttpError(400, body)
    token = emulator.store.issue_anonymous(client_id)
    account = emulator.store.accounts[token.user_id]
    return ok(
        {
            "token": token.value,
            "user_id": token.user_id,
            "expires_at": iso(token.expires_at),
            "expires_in": int(emulator.config.anon_token_ttl_s),
            "credits": account.available,
        },
        emulator,
    )


@router.post("/api/tasks/{user}/with-session/nemo_agent")
async def create_session(
    user: str, request: Request, emulator: EmulatorDep, token: TokenDep
) -> dict[str, Any]:
    check_user_segment(user, token)
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        body = {}
    body = body if isinstance(body, dict) else {}
    session = emulator.store.create_session(
        token.user_id, str(body.get("task_name") or "project"), str(body.get("language") or "en")
    )
    return ok(
        {"task_id": session.task_id, "session_id": session.session_id, "user_id": token.user_id},
        emulator,
    )


@router.get("/api/state/nemo_agent/{user}/{session_id}/latest")
async def session_state(
    user: str, session_id: str, emulator: EmulatorDep, token: TokenDep
) -> dict[str, Any]:
    check_user_segment(user, token)
    return ok(require_session(emulator, session_id, token).state(), emulator)


@router.get("/api/credits/balance/simple")
async def credit_balance(emulator: EmulatorDep, token: TokenDep) -> dict[str, Any]:
    account = emulator.store.accounts[token.user_id]
    return ok(
        {
            "available": account.available,
            "frozen": account.frozen,
            "total": account.available + account.frozen,
        },
        emulator,
    )
