"""One agent turn, run in the background so the session changes even if the client goes away.

The turn writes framed SSE events into a queue; None in the queue closes the stream. Faults
(no text, a cut before or after the draft change, an in-stream error) are drawn when it starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from emulator.agent import Plan
from emulator.draft import draft_hash
from emulator.events import EventWriter, text_chunks
from emulator.runtime import Emulator
from emulator.state import Session

TEMPORARY_ISSUE = "I encountered a temporary issue. Please try again."
Queue = asyncio.Queue[bytes | None]


@dataclass
class TurnFaults:
    delay_s: float = 0.0
    no_text: bool = False
    cut: bool = False
    cut_after_apply: bool = False
    stream_error: bool = False


def draw_faults(emulator: Emulator, session_id: str, plan: Plan) -> TurnFaults:
    """This turn's faults; a turn that changes nothing always answers with text."""
    profile, faults = emulator.faults.profile, emulator.faults
    delay = emulator.config.scaled(faults.uniform("reply_delay", profile.reply_delay_s, session_id))
    if plan.apply is None:
        return TurnFaults(delay_s=min(delay, emulator.config.scaled(1.0)))
    drawn = TurnFaults(delay_s=delay)
    drawn.cut = faults.chance("cut_stream", profile.cut_stream_rate, session_id)
    if drawn.cut:
        share = profile.cut_after_apply_share
        drawn.cut_after_apply = faults.rng("cut_point", session_id).random() < share
    elif faults.chance("stream_error", profile.stream_error_rate, session_id):
        drawn.stream_error = True
    elif faults.chance("no_text", profile.no_text_rate, session_id):
        drawn.no_text = True
    return drawn


async def run_turn(
    emulator: Emulator,
    session: Session,
    plan: Plan,
    drawn: TurnFaults,
    writer: EventWriter,
    queue: Queue,
) -> None:
    """Tool calls, the wait, the draft change and credits, then the reply; always closes."""
    store, stats = emulator.store, emulator.stats
    charged = plan.cost
    try:
        for call in plan.calls:
            queue.put_nowait(writer.function_call(call.call_id, call.name, call.args))
        await asyncio.sleep(drawn.delay_s)
        alive = store.sessions.get(session.session_id) is session
        if drawn.stream_error or (drawn.cut and not drawn.cut_after_apply) or not alive:
            store.refund(session.user_id, charged)
            charged = 0
            if drawn.stream_error:
                queue.put_nowait(writer.error(TEMPORARY_ISSUE))
            stats.turns["not_applied"] += 1
            return
        if plan.apply is not None:
            plan.apply(session)
            session.agent_drafts.add(draft_hash(session.draft))
            session.pending_request = None  # the question it asked is answered
            stats.turns["applied"] += 1
        store.settle(session.user_id, charged)
        charged = 0
        for call in plan.calls:
            response = {"status": "success", "draft_updated": call.name == "edit_multitrack"}
            queue.put_nowait(writer.function_response(call.call_id, call.name, response))
        if drawn.cut or drawn.no_text:
            stats.turns["cut" if drawn.cut else "no_text"] += 1
            return
        for chunk in text_chunks(plan.reply):
            framed = writer.text(chunk, partial=True)
            if framed:
                queue.put_nowait(framed)
        queue.put_nowait(writer.text(plan.reply, partial=False))
    finally:
        if charged:
            store.refund(session.user_id, charged)
        session.turn_running = False
        queue.put_nowait(None)


async def relay(
    queue: Queue,
    writer: EventWriter,
    keepalive_s: float | None,
    emulator: Emulator,
    turn: asyncio.Task[None] | None = None,
) -> AsyncIterator[bytes]:
    """The stream body: queued events, a keep-alive whenever the turn is quiet for a while
    (never, when `keepalive_s` is None). With `turn` given, a client that leaves before the
    turn ends cancels it, as ADK does (long_silence variant)."""
    emulator.stats.stream_opened()
    finished = False
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=keepalive_s)
            except TimeoutError:
                yield writer.keepalive()
                continue
            if item is None:
                finished = True
                return
            yield item
    finally:
        emulator.stats.stream_closed()
        if turn is not None and not finished and not turn.done():
            turn.cancel()
            emulator.stats.turns["canceled_on_leave"] += 1
