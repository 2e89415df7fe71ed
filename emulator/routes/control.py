"""/_emulator/*: stats, reset, runtime fault settings, credits, token expiry, session loss."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from emulator.routes.deps import EmulatorDep, HttpError

router = APIRouter(prefix="/_emulator")
media_router = APIRouter()


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise HttpError(400, {"error": "body must be JSON"}) from exc
    if not isinstance(body, dict):
        raise HttpError(400, {"error": "body must be a JSON object"})
    return body


@router.get("/health")
async def health(emulator: EmulatorDep) -> dict[str, Any]:
    return {"ok": True, "profile": emulator.faults.profile.name}


@router.get("/stats")
async def stats(emulator: EmulatorDep) -> dict[str, Any]:
    return emulator.snapshot()


@router.post("/reset")
async def reset(emulator: EmulatorDep) -> dict[str, Any]:
    emulator.reset()
    return {"ok": True}


@router.get("/config")
async def get_config(emulator: EmulatorDep) -> dict[str, Any]:
    return {"profile": emulator.faults.profile.to_dict(), "time_scale": emulator.config.time_scale}


@router.post("/config")
async def set_config(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    """Change profile fields (and `time_scale`) while running."""
    changes = await _json(request)
    if "time_scale" in changes:
        emulator.config.time_scale = float(changes.pop("time_scale"))
    try:
        emulator.set_profile_fields(changes)
    except (ValueError, TypeError) as exc:
        raise HttpError(400, {"error": str(exc)}) from exc
    return await get_config(emulator)


@router.post("/credits")
async def add_credits(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    body = await _json(request)
    try:
        amount = int(body["amount"])
    except (KeyError, TypeError, ValueError) as exc:
        raise HttpError(400, {"error": "amount (an integer) required"}) from exc
    touched = emulator.store.add_credits(
        amount, token=body.get("token"), user_id=body.get("user_id")
    )
    if not touched and (body.get("token") or body.get("user_id")):
        raise HttpError(404, {"error": "no such token or user"})
    return {"ok": True, "users": touched}


@router.post("/expire-tokens")
async def expire_tokens(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    body = await _json(request)
    count = emulator.store.expire_tokens(bool(body.get("include_registered", False)))
    return {"ok": True, "expired": count}


@router.post("/lose-session/{session_id}")
async def lose_session(session_id: str, emulator: EmulatorDep) -> dict[str, Any]:
    return {"ok": True, "lost": emulator.store.lose_session(session_id)}


@media_router.get("/media/{name}", response_model=None)
async def media_file(name: str, emulator: EmulatorDep) -> FileResponse:
    path = emulator.media_dir / name
    if "/" in name or not path.is_file():
        raise HttpError(404, {"error": "no such media"})
    return FileResponse(path)
