"""The emulated agent: turns what a message asks for into tool calls, a draft edit and a reply."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator import draft as drafts
from emulator.intents import DEFAULT_ASPECT, DEFAULT_DURATION_S, Intents, read_intents
from emulator.state import Session

HELP = (
    "I can generate a video ('generate a 10-second vertical video for \"Product\"') and edit it: "
    "'add the text \"...\" from 1 to 3 seconds', 'make it 16:9', 'add music', "
    "'remove the music', 'make it 15 seconds'."
)


@dataclass
class ToolCall:
    name: str
    args: dict[str, Any]
    call_id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:12])


@dataclass
class Plan:
    """One turn: what it costs, the tools it calls, how it changes the session, what it says."""

    cost: int
    calls: list[ToolCall]
    reply: str
    apply: Callable[[Session], None] | None = None


def _visuals(session: Session) -> list[dict[str, Any]]:
    return [i for i in session.video_infos if i["file_type"] in ("image", "video")]


def _music(session: Session) -> dict[str, Any] | None:
    audio = [i for i in session.video_infos if i["file_type"] == "audio"]
    return audio[-1] if audio else None


def _generated(session: Session, kind: str, tool: str, duration_s: float) -> None:
    session.generated_media.append(
        {
            "id": "gen_" + uuid.uuid4().hex[:12],
            "type": kind,
            "tool": tool,
            "duration": duration_s,
            "created_at": time.time(),
        }
    )


def _edit(draft: drafts.Draft, intents: Intents, session: Session) -> drafts.Draft:
    """The non-generating edits, in a fixed order."""
    if intents.aspect:
        draft = drafts.with_aspect(draft, intents.aspect)
    if intents.duration_s and not intents.generate:
        draft = drafts.with_duration(draft, intents.duration_s)
    for overlay in intents.texts:
        start, end = overlay.start_s, overlay.end_s
        if overlay.from_end_s is not None:
            end = draft["d"] / 1000
            start = max(0.0, end - overlay.from_end_s)
        draft = drafts.with_text(draft, overlay.text, start, end)
    if intents.remove_music:
        draft = drafts.without_music(draft)
    elif intents.add_music and not intents.generate:
        draft = drafts.with_music(draft, _music(session))
    return draft


def _generate_plan(intents: Intents, session: Session, cost: int, prompt: str) -> Plan:
    duration = intents.duration_s or DEFAULT_DURATION_S
    aspect = intents.aspect or DEFAULT_ASPECT
    title = intents.title or "Your product"
    calls = [
        ToolCall(
            "generate_video_with_seedance",
            {"prompt": prompt[:500], "duration": duration, "aspect_ratio": aspect},
        )
    ]
    music = _music(session)
    if music is None and not intents.remove_music:
        calls.append(
            ToolCall("generate_music", {"prompt": "upbeat background", "duration": duration})
        )
    if intents.texts or intents.remove_music:
        calls.append(ToolCall("edit_multitrack", {"operations": _operations(intents)}))

    def apply(target: Session) -> None:
        draft = drafts.build_draft(
            visuals=_visuals(target),
            music=_music(target),
            duration_s=duration,
            aspect=aspect,
            title=title,
            captions=intents.captions,
        )
        target.draft = _edit(
            draft, Intents(texts=intents.texts, remove_music=intents.remove_music), target
        )
        target.canvas_config = drafts.canvas_config(aspect)
        _generated(target, "video", "generate_video_with_seedance", duration)
        if any(c.name == "generate_music" for c in calls):
            _generated(target, "audio", "generate_music", duration)
        for info in _visuals(target):
            target.video_analyses[info["media_id"]] = {
                "summary": f"{info['file_type']} {info['filename']}",
                "duration": info["duration"],
            }

    reply = (
        f'Here is your {duration:g}-second {aspect} video "{title}" with '
        f"{max(1, len(_visuals(session)))} visual segment(s), a title and "
        f"{'no music' if intents.remove_music else 'background music'}. Ready to export."
    )
    return Plan(cost, calls, reply, apply)


def _operations(intents: Intents) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    if intents.aspect and not intents.generate:
        ops.append({"op": "set_aspect_ratio", "aspect_ratio": intents.aspect})
    if intents.duration_s and not intents.generate:
        ops.append({"op": "set_duration", "seconds": intents.duration_s})
    ops += [
        {"op": "add_text", "text": t.text, "start": t.start_s, "end": t.end_s}
        for t in intents.texts
    ]
    if intents.remove_music:
        ops.append({"op": "remove_music"})
    elif intents.add_music and not intents.generate:
        ops.append({"op": "add_music"})
    return ops


def _edit_plan(intents: Intents, session: Session, cost: int) -> Plan:
    calls = []
    generated_music = intents.add_music and not intents.remove_music and _music(session) is None
    if generated_music:
        calls.append(
            ToolCall(
                "generate_music",
                {"prompt": "upbeat background", "duration": session.draft["d"] / 1000},
            )
        )
    operations = _operations(intents)
    calls.append(ToolCall("edit_multitrack", {"operations": operations}))

    def apply(target: Session) -> None:
        if not target.draft:
            return
        target.draft = _edit(target.draft, intents, target)
        target.canvas_config = drafts.canvas_config(target.draft["ar"])
        if generated_music:
            _generated(target, "audio", "generate_music", target.draft["d"] / 1000)

    done = ", ".join(op["op"].replace("_", " ") for op in operations)
    return Plan(cost, calls, f"Done: {done}. The draft is updated.", apply)


def plan_turn(session: Session, message: str, *, generation_cost: int, edit_cost: int) -> Plan:
    """The plan for one message; a message asking for nothing understood costs nothing."""
    intents = read_intents(message)
    if intents.generate:
        return _generate_plan(intents, session, generation_cost, message)
    if not intents.understood:
        return Plan(0, [], "I'm not sure what to change. " + HELP)
    if not drafts.has_segments(session.draft):
        return Plan(0, [], "There is no video yet. " + HELP)
    return _edit_plan(intents, session, edit_cost)
