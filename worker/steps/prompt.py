"""The prompt step: send the job's messages in order, each verified against the session state.

Before each message the state is snapshotted (draft hash, media count) and the send is recorded,
so a re-run never pays for a message twice without first checking whether it already took
effect. A turn that ends without text, breaks, or hits the 15-minute ceiling is verified by
polling the state (a `Wait`, not a sleep); unverified, the message is sent once more, then the
job fails `no_result`.
"""

from datetime import UTC, datetime
from typing import Any

from core.settings import get_settings
from worker.nemo import SessionState, errors
from worker.outcomes import Advance, Fail, Outcome, Wait
from worker.runner import StepContext
from worker.timeline import has_segments, summarize

MAX_SENDS = 2
NOT_PROCESSED = (errors.RateLimited, errors.OutOfCredits, errors.SessionLost, errors.TokenInvalid)


def job_messages(job_input: dict[str, Any]) -> list[str]:
    messages = [str(m) for m in job_input.get("messages") or [] if str(m).strip()]
    if messages:
        return messages
    prompt = job_input.get("prompt") or f"Generate a product video for {job_input.get('title')}"
    return [str(prompt)]


def _snapshot(state: SessionState) -> dict[str, Any]:
    return {"draft_hash": state.draft_hash, "media_count": state.media_count}


def _changed(state: SessionState, before: dict[str, Any]) -> bool:
    return state.draft_hash != before.get("draft_hash") or state.media_count > int(
        before.get("media_count") or 0
    )


def _now() -> datetime:
    return datetime.now(UTC)


def prompt_step(context: StepContext) -> Outcome:
    settings = get_settings()
    session_id = str(context.checkpoint["session_id"])
    messages = job_messages(context.input)
    progress: list[dict[str, Any]] = [dict(p) for p in context.checkpoint.get("messages") or []]
    progress += [{"status": "pending", "sends": 0} for _ in messages[len(progress) :]]

    for index, text in enumerate(messages):
        record = progress[index]
        if record["status"] == "done":
            continue
        if record["status"] == "sent":
            # A send whose outcome we never saw (the worker died): verify before resending.
            record.update(status="verifying", verify_started_at=_now().isoformat())
        if record["status"] == "verifying":
            state = context.client.session_state(session_id)
            if _changed(state, record["before"]):
                record.update(status="done", verified="state")
                context.save(messages=progress)
                continue
            started = datetime.fromisoformat(str(record["verify_started_at"]))
            if (_now() - started).total_seconds() < settings.verify_timeout_s:
                return Wait(settings.verify_poll_interval_s, checkpoint={"messages": progress})
            if record["sends"] >= MAX_SENDS:
                return Fail(
                    "no_result",
                    f"The agent did not change the video after message {index + 1} was sent "
                    f"{record['sends']} times. Rephrase the prompt, then retry the job.",
                )
        else:
            state = context.client.session_state(session_id)
            record["before"] = _snapshot(state)

        previous = dict(record)
        record["sends"] = int(record["sends"]) + 1
        record["status"] = "sent"
        context.save(messages=progress)
        try:
            turn = context.client.send_message(
                session_id,
                text,
                deadline_s=settings.nemo_stream_deadline_s,
            )
        except NOT_PROCESSED:
            # Refused before the agent saw it (rate limit, credits, lost session): not a send.
            progress[index] = previous
            context.save(messages=progress)
            raise
        if turn.failure is not None:
            # The stream closed on a coded error (429, 1001, 2001...): the turn is over, so the
            # state is settled. Applied anyway: done; not applied: not a send, and the error
            # takes its row of the policy table like the same code anywhere else.
            if _changed(context.client.session_state(session_id), record["before"]):
                record.update(status="done", verified="state")
                context.save(messages=progress)
                continue
            progress[index] = previous
            context.save(messages=progress)
            raise turn.failure
        if turn.text and not turn.cut and not turn.deadline_hit and not turn.error:
            record.update(status="done", verified="text", reply=turn.text[:500])
            context.save(messages=progress)
            continue
        record.update(status="verifying", verify_started_at=_now().isoformat())
        reason = (
            "the stream broke"
            if turn.cut
            else "the 15-minute ceiling was hit"
            if turn.deadline_hit
            else f"the stream reported an error ({turn.error})"
            if turn.error
            else "the reply had no text"
        )
        return Wait(
            settings.verify_poll_interval_s,
            checkpoint={"messages": progress},
            message=f"message {index + 1}: {reason}; verifying through the session state",
        )

    state = context.client.session_state(session_id)
    if not has_segments(state.draft):
        return Fail(
            "no_result",
            "The agent finished without a timeline to export. Check that the product has "
            "images or a prompt the agent can act on, then retry the job.",
        )
    summary = summarize(state.draft)
    return Advance(
        checkpoint={"messages": progress, "draft_hash": state.draft_hash},
        fields={"timeline_summary": summary},
        message=summary,
    )
