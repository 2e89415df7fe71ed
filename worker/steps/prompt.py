"""The prompt step: send the job's messages in order, each turn checked against the session state.

A reply is no proof of an edit: after every turn the draft (and the generated media) before and
after decide. A turn that changed nothing and is settled (it said something and started no tool)
gets one follow-up in the same session; an agent that still edits nothing fails the job
`agent_no_edit` with its reply. A turn that may still land (no text, a cut, an error, the
ceiling, tools started) is verified by polling the state (a `Wait`, not a sleep) before anything
is sent again; unverified, the same text is sent once more (then the follow-up, if the agent
had spoken), then the job fails `no_result` (or `agent_no_edit`).
Each send is recorded before it goes out, so a re-run checks the state before sending again.
"""

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.settings import get_settings
from worker.nemo import SessionState, TurnResult, errors
from worker.outcomes import Advance, Fail, Outcome, Wait
from worker.runner import StepContext
from worker.timeline import has_segments, summarize

MAX_RESENDS = 1
"""Sends of the same text again after a turn that may have landed was verified unchanged."""
MAX_FOLLOW_UPS = 1
REPLY_KEPT_CHARS = 500
NOT_PROCESSED = (errors.RateLimited, errors.OutOfCredits, errors.SessionLost, errors.TokenInvalid)


class Sending(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    """Sent and its outcome never seen (the worker died): verify before sending again."""
    VERIFYING = "verifying"
    DONE = "done"


@dataclass
class MessageProgress:
    """One message's progress, kept in the checkpoint as JSON."""

    status: Sending = Sending.PENDING
    sends: int = 0
    resends: int = 0
    follow_ups: int = 0
    before: dict[str, Any] = field(default_factory=dict)
    verify_started_at: str | None = None
    verified: str | None = None
    reply: str | None = None
    """The agent's last words on this message (kept for a user when it edits nothing)."""
    next_text: str | None = None
    """What goes out on the next send: None for the message itself, else the follow-up."""

    @classmethod
    def load(cls, raw: dict[str, Any]) -> "MessageProgress":
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        known["status"] = Sending(known.get("status", Sending.PENDING))
        return cls(**known)

    def dump(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


def job_messages(job_input: dict[str, Any]) -> list[str]:
    messages = [str(m) for m in job_input.get("messages") or [] if str(m).strip()]
    if messages:
        return messages
    prompt = job_input.get("prompt") or f"Generate a product video for {job_input.get('title')}"
    return [str(prompt)]


def follow_up(job_input: dict[str, Any]) -> str:
    """What answers a question or a refusal: decide yourself, with the job's own inputs."""
    facts = []
    if job_input.get("title"):
        facts.append(f'the product is "{job_input["title"]}"')
    if job_input.get("description"):
        facts.append(f"described as: {job_input['description']}")
    if job_input.get("duration_s"):
        facts.append(f"{job_input['duration_s']} seconds long")
    if job_input.get("aspect_ratio"):
        facts.append(f"aspect ratio {job_input['aspect_ratio']}")
    known = f" What you know: {'; '.join(facts)}." if facts else ""
    return (
        "Please decide for yourself and make the video now: choose whatever style, pacing and "
        f"wording suit the product best, and do not ask me anything else.{known}"
    )


def _snapshot(state: SessionState) -> dict[str, Any]:
    return {"draft_hash": state.draft_hash, "media_count": state.media_count}


def _changed(state: SessionState, before: dict[str, Any]) -> bool:
    return state.draft_hash != before.get("draft_hash") or state.media_count > int(
        before.get("media_count") or 0
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _settled_without_edit(turn: TurnResult) -> bool:
    """The agent spoke and ended its turn without starting a tool: nothing is still coming."""
    return turn.has_text and not (turn.cut or turn.deadline_hit or turn.error or turn.tool_calls)


def _why_unsettled(turn: TurnResult) -> str:
    if turn.cut:
        return "the stream broke"
    if turn.deadline_hit:
        return "the 15-minute ceiling was hit"
    if turn.error:
        return f"the stream reported an error ({turn.error})"
    if turn.tool_calls:
        return "the agent's tools have not changed the draft yet"
    return "the reply had no text"


def _no_edit(index: int, record: MessageProgress) -> Fail:
    reply = (record.reply or "").strip() or "(no text)"
    return Fail(
        "agent_no_edit",
        f"The agent did not edit the video after message {index + 1} and a follow-up asking it "
        f'to decide for itself. Its last reply: "{reply}". Answer it in the job\'s prompt or '
        "messages (or reword them), then retry the job.",
    )


def prompt_step(context: StepContext) -> Outcome:
    settings = get_settings()
    session_id = str(context.checkpoint["session_id"])
    messages = job_messages(context.input)
    raw: list[dict[str, Any]] = list(context.checkpoint.get("messages") or [])
    progress = [MessageProgress.load(r) for r in raw]
    progress += [MessageProgress() for _ in messages[len(progress) :]]
    state: SessionState | None = None  # the latest state read, reused while nothing was sent

    def save() -> None:
        context.save(**_dumped(progress))

    for index, text in enumerate(messages):
        record = progress[index]
        resend = False  # counted when it goes out: a send refused before the agent saw it is none
        if record.status is Sending.DONE:
            continue
        if record.status is Sending.SENT:
            record.status, record.verify_started_at = Sending.VERIFYING, _now().isoformat()
        if record.status is Sending.VERIFYING:
            state = context.client.session_state(session_id)
            if _changed(state, record.before):
                record.status, record.verified = Sending.DONE, "state"
                save()
                continue
            started = datetime.fromisoformat(str(record.verify_started_at))
            if (_now() - started).total_seconds() < settings.verify_timeout_s:
                return Wait(settings.verify_poll_interval_s, checkpoint=_dumped(progress))
            # Settled and still unchanged: only now may something be sent again. The last text
            # once more (that turn was cut or silent), then the follow-up, then the job fails.
            if record.resends < MAX_RESENDS:
                resend = True
            elif record.reply and record.follow_ups < MAX_FOLLOW_UPS:
                record.next_text = follow_up(context.input)
            elif record.reply:
                return _no_edit(index, record)
            else:
                return Fail(
                    "no_result",
                    f"The agent did not change the video after message {index + 1} was sent "
                    f"{record.sends} times. Rephrase the prompt, then retry the job.",
                )
        else:
            state = state or context.client.session_state(session_id)
            record.before = _snapshot(state)

        while True:
            previous = MessageProgress.load(record.dump())
            is_follow_up = record.next_text is not None and not resend
            record.sends += 1
            record.resends += int(resend)
            record.follow_ups += int(is_follow_up)
            resend = False
            record.status = Sending.SENT
            save()
            try:
                turn = context.client.send_message(
                    session_id, record.next_text or text, deadline_s=settings.nemo_stream_deadline_s
                )
            except NOT_PROCESSED:
                # Refused before the agent saw it (rate limit, credits, lost session): not a send.
                progress[index] = previous
                save()
                raise
            if turn.has_text:
                record.reply = turn.text.strip()[:REPLY_KEPT_CHARS]
            try:
                state = context.client.session_state(session_id)
            except errors.NemoError:
                if turn.failure is None:
                    raise  # the send stays recorded: the next run verifies before sending
                progress[index] = previous
                save()
                raise turn.failure from None
            if _changed(state, record.before):
                record.status, record.verified, record.next_text = Sending.DONE, "state", None
                if index < len(messages) - 1:  # the last message's record rides on the advance
                    save()
                break
            if turn.failure is not None:
                # The stream closed on a coded error (429, 1001, 2001...) and nothing changed:
                # not a send; the error takes its row of the policy table.
                progress[index] = previous
                save()
                raise turn.failure
            if _settled_without_edit(turn):
                if record.follow_ups < MAX_FOLLOW_UPS:
                    # Settled: nothing of it can land any more, so a refused follow-up is sent
                    # again on the next run without a verification window first.
                    record.next_text, record.status = follow_up(context.input), Sending.PENDING
                    continue  # the follow-up, in the same session, now
                save()
                return _no_edit(index, record)
            record.status, record.verify_started_at = Sending.VERIFYING, _now().isoformat()
            return Wait(
                settings.verify_poll_interval_s,
                checkpoint=_dumped(progress),
                message=f"message {index + 1}: {_why_unsettled(turn)}; verifying through the "
                "session state",
            )

    state = state or context.client.session_state(session_id)
    if not has_segments(state.draft):
        return Fail(
            "no_result",
            "The agent finished without a timeline to export. Check that the product has "
            "images or a prompt the agent can act on, then retry the job.",
        )
    summary = summarize(state.draft)
    return Advance(
        # The draft rides to the export step, which then needs no state read of its own.
        checkpoint={**_dumped(progress), "draft_hash": state.draft_hash, "draft": state.draft},
        fields={"timeline_summary": summary},
        message=summary,
    )


def _dumped(progress: list[MessageProgress]) -> dict[str, Any]:
    return {"messages": [p.dump() for p in progress]}
