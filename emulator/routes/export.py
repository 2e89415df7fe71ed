"""Export: render posting, status, cancel and download, in the `success` envelope."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse

from emulator.draft import draft_hash, has_segments
from emulator.render_answers import own_render_id, refused_download, status_answer
from emulator.renders import RenderJob
from emulator.routes.deps import (
    ATTRIBUTION_HEADERS,
    EmulatorDep,
    EnvelopeError,
    HttpError,
    authenticate,
    base_url,
    gate,
)
from emulator.runtime import Emulator
from emulator.state import Token

router = APIRouter(dependencies=[Depends(gate)])


def _failure(status: int, error: str, **extra: Any) -> HttpError:
    return HttpError(status, {"success": False, "data": None, "error": error, **extra})


def render_token(request: Request, emulator: EmulatorDep) -> Token:
    """Auth for render calls: HTTP 401 with code 1001, since this envelope has no code."""
    try:
        return authenticate(emulator, request)
    except EnvelopeError as exc:
        raise _failure(401, exc.message, code=exc.code, message=exc.message) from exc


def _job(emulator: Emulator, render_id: str) -> RenderJob:
    job = emulator.renders.find(render_id)
    if job is None:
        raise _failure(404, f"render not found: {render_id}")
    return job


def _answer(job: RenderJob, request: Request, emulator: Emulator) -> dict[str, Any]:
    return status_answer(job, base_url(request, emulator), emulator)


def _note_unedited(emulator: Emulator, session_id: str, draft: Any) -> None:
    """Count a render of a draft no agent turn of that session produced (a client that exports
    a draft the agent did not edit). A session this process does not know (it was restarted:
    sessions live in memory) cannot be judged, and is counted apart."""
    session = emulator.store.sessions.get(session_id)
    if session is None:
        emulator.stats.renders["unjudged_draft"] += 1
        return
    if not isinstance(draft, dict) or draft_hash(draft) not in session.agent_drafts:
        emulator.stats.renders["unedited_draft"] += 1


@router.post("/api/render/proxy/lambda")
async def post_render(request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    render_token(request, emulator)
    if any(h not in request.headers for h in ATTRIBUTION_HEADERS):
        message = "Export is not available on this plan: skill attribution headers missing"
        raise HttpError(402, {"code": 402, "message": message})
    if emulator.faults.chance("export_blocked", emulator.faults.profile.export_blocked_rate):
        message = "Export is not available on your current plan tier; upgrade to export"
        raise HttpError(402, {"code": 402, "message": message})
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise _failure(400, "body must be a JSON object")
    render_id = str(body.get("id") or "")
    if not render_id:
        raise _failure(400, "render id required")
    if emulator.renders.is_used(render_id):
        emulator.stats.renders["rejected_reused_id"] += 1
        raise _failure(409, "render id already used")
    draft = body.get("draft")
    session_id = str(body.get("sessionId") or body.get("session_id") or "")
    _note_unedited(emulator, session_id, draft)
    if not has_segments(draft):
        raise _failure(400, "draft has no segments: nothing to render")
    assert isinstance(draft, dict)
    own_id = None
    if emulator.faults.profile.serves("status_words"):
        own_id = own_render_id(emulator, render_id)
    job = emulator.renders.post(render_id, session_id, draft, own_id)
    return _answer(job, request, emulator)


@router.get("/api/render/proxy/lambda/{render_id}")
async def render_status(render_id: str, request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    render_token(request, emulator)
    return _answer(_job(emulator, render_id), request, emulator)


@router.post("/api/render/proxy/lambda/{render_id}/cancel")
async def cancel_render(render_id: str, request: Request, emulator: EmulatorDep) -> dict[str, Any]:
    render_token(request, emulator)
    job = _job(emulator, render_id)
    emulator.renders.cancel(job)
    if emulator.faults.profile.serves("status_envelope"):
        return {"status": "success", "data": None}
    return _answer(job, request, emulator)


@router.get("/api/render/proxy/{render_id}/download", response_model=None)
async def download(
    render_id: str, emulator: EmulatorDep, expires: str | None = None
) -> FileResponse | HTMLResponse:
    job = emulator.renders.find(render_id)
    if job is None:
        raise HttpError(
            404, {"success": False, "error": f"render not found: {render_id}"}, raw=True
        )
    refused = refused_download(job, expires, emulator)
    if refused == 0:
        return HTMLResponse("<html><body><h1>This link has expired</h1></body></html>")
    if refused is not None:
        raise HttpError(refused, {"error": "Request has expired", "code": refused}, raw=True)
    if job.status != "completed" or job.output is None or not job.output.exists():
        body = {"success": False, "error": f"render {render_id} is {job.status}, not completed"}
        raise HttpError(409, body, raw=True)
    return FileResponse(job.output, media_type="video/mp4", filename=f"{job.id}.mp4")
