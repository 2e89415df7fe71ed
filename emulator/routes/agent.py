"""POST /run_sse: one agent turn streamed as server-sent events; closing the stream ends it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from emulator.agent import plan_turn
from emulator.events import EventWriter
from emulator.routes.deps import EmulatorDep, EnvelopeError, authenticate, find_session, gate
from emulator.runtime import Emulator
from emulator.turns import Queue, draw_faults, relay, run_turn

router = APIRouter(dependencies=[Depends(gate)])
REGISTER_URL = "https://nemovideo.com/register?bind={user_id}"


def _pick(body: dict[str, Any], snake: str, camel: str) -> Any:
    return body.get(snake, body.get(camel))


def _message_text(message: Any) -> str:
    if isinstance(message, str):
        return message
    if not isinstance(message, dict):
        return ""
    parts = message.get("parts") or []
    return "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)).strip()


@router.post("/run_sse", response_model=None)
async def run_sse(request: Request, emulator: EmulatorDep) -> StreamingResponse | JSONResponse:
    token = authenticate(emulator, request)
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"detail": "Body must be a JSON object"}, status_code=422)
    session_id = str(_pick(body, "session_id", "sessionId") or "")
    session = find_session(emulator, session_id, token)
    if session is None:
        return JSONResponse({"detail": f"Session not found: {session_id}"}, status_code=404)
    text = _message_text(_pick(body, "new_message", "newMessage"))
    config = emulator.config
    plan = plan_turn(
        session, text, generation_cost=config.generation_cost, edit_cost=config.edit_cost
    )
    if plan.cost and not emulator.store.freeze(token.user_id, plan.cost):
        raise _out_of_credits(emulator, token.user_id, plan.cost)
    emulator.stats.turns["started"] += 1
    session.turn_running = True
    writer = EventWriter.new(config.event_shape)
    queue: Queue = asyncio.Queue()
    drawn = draw_faults(emulator, session_id, plan)
    emulator.keep(asyncio.create_task(run_turn(emulator, session, plan, drawn, writer, queue)))
    return StreamingResponse(
        relay(queue, writer, config.keepalive_s, emulator),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _out_of_credits(emulator: Emulator, user_id: str, cost: int) -> EnvelopeError:
    account = emulator.store.accounts[user_id]
    data: dict[str, Any] = {"required": cost, "available": account.available}
    message = f"Insufficient credits: this needs {cost}, {account.available} available."
    if account.kind == "anonymous":
        data["register_url"] = REGISTER_URL.format(user_id=user_id)
        message += f" Register to get more: {data['register_url']}"
    return EnvelopeError(2001, message, data)
