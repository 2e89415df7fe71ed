"""POST /run_sse: one agent turn streamed as server-sent events; closing the stream ends it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from emulator.agent import Plan, plan_turn
from emulator.events import EventWriter
from emulator.routes.deps import (
    EmulatorDep,
    EnvelopeError,
    authenticate,
    find_session,
    gate,
    in_200_body,
)
from emulator.runtime import Emulator
from emulator.state import Session
from emulator.turns import Queue, draw_faults, relay, run_turn

router = APIRouter(dependencies=[Depends(gate)])
REGISTER_URL = "https://nemovideo.com/register?bind={user_id}"
QUESTION = (
    "Before I start: which style do you prefer for this video: minimal, bold or playful? "
    "And should the music be calm or upbeat?"
)
TOO_MANY = {"code": 429, "message": "Too many requests: retry later"}


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
    profile = emulator.faults.profile
    if session is None:
        body = {"detail": f"Session not found: {session_id}"}
        if profile.serves("codes_in_200"):
            return in_200_body(request, 404, body)
        return JSONResponse(body, status_code=404)
    text = _message_text(_pick(body, "new_message", "newMessage"))
    config = emulator.config
    writer = EventWriter.new(config.event_shape)
    if profile.serves("stream_codes") and emulator.faults.chance(
        "stream_code", profile.variant_rate, session_id
    ):
        return _stream_of(
            writer.function_call("call_x", "generate_video_with_seedance", {}), TOO_MANY
        )
    plan = _plan(emulator, session, text)
    if plan.cost and not emulator.store.freeze(token.user_id, plan.cost):
        refusal = _out_of_credits(emulator, token.user_id, plan.cost)
        if profile.serves("stream_codes"):
            return _stream_of(b"", {"code": refusal.code, "message": refusal.message})
        raise refusal
    emulator.stats.turns["started"] += 1
    session.turn_running = True
    queue: Queue = asyncio.Queue()
    drawn = draw_faults(emulator, session_id, plan)
    turn = asyncio.create_task(run_turn(emulator, session, plan, drawn, writer, queue))
    emulator.keep(turn)
    silent = profile.serves("long_silence")
    return StreamingResponse(
        relay(
            queue,
            writer,
            None if silent else config.keepalive_s,
            emulator,
            turn if silent else None,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _plan(emulator: Emulator, session: Session, text: str) -> Plan:
    """The turn's plan; under asks_question a share of first turns (every turn under
    stubborn_agent) ask a question instead, and the message after a question answers it."""
    profile, config = emulator.faults.profile, emulator.config
    session.turns += 1
    stubborn = profile.serves("stubborn_agent")
    asks = (
        profile.serves("asks_question")
        and session.turns == 1
        and emulator.faults.chance("question", profile.variant_rate, session.session_id)
    )
    if stubborn or asks:
        session.pending_request = session.pending_request or text
        emulator.stats.turns["questions"] += 1
        return Plan(0, [], QUESTION)
    if session.pending_request is not None:
        text = f"{session.pending_request}\n{text}"  # forgotten once a turn edits (turns.py)
    return plan_turn(
        session, text, generation_cost=config.generation_cost, edit_cost=config.edit_cost
    )


def _stream_of(first: bytes, error: dict[str, Any]) -> StreamingResponse:
    """A stream that ends on an error event with a code (stream_codes variant)."""

    async def body() -> Any:
        if first:
            yield first
        yield f"data: {json.dumps(error)}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream")


def _out_of_credits(emulator: Emulator, user_id: str, cost: int) -> EnvelopeError:
    account = emulator.store.accounts[user_id]
    data: dict[str, Any] = {"required": cost, "available": account.available}
    message = f"Insufficient credits: this needs {cost}, {account.available} available."
    if account.kind == "anonymous":
        data["register_url"] = REGISTER_URL.format(user_id=user_id)
        message += f" Register to get more: {data['register_url']}"
    return EnvelopeError(2001, message, data)
