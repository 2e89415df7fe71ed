"""The prompt step checks every turn against the session state, never trusting a reply: a
question gets one follow-up, an agent that still edits nothing fails `agent_no_edit` with its
reply, and nothing is sent again while the first send may still land."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, cast

import pytest

from core.states import JobState
from worker.nemo import NemoClient, RateLimited, SessionState, ToolCall, TurnResult
from worker.outcomes import Advance, Fail, Wait
from worker.runner import StepContext
from worker.steps.prompt import prompt_step
from worker.tokens import ResolvedToken

DRAFT = {"t": [{"tt": 0, "sg": [{"d": 4000, "m": {"title": "bottle"}}]}], "d": 4000}
QUESTION = "Which style do you prefer: minimal, bold or playful?"

Agent = Callable[[str, "FakeBackend"], TurnResult]


class FakeBackend:
    """A session whose agent is a script: each message runs the next agent function."""

    def __init__(self, *agents: Agent) -> None:
        self.agents = list(agents)
        self.draft: dict[str, Any] = {}
        self.sent: list[str] = []
        self.state_reads = 0

    def session_state(self, session_id: str) -> SessionState:
        self.state_reads += 1
        return SessionState.parse({"state": {"draft": dict(self.draft)}})

    def send_message(self, session_id: str, text: str, **_: Any) -> TurnResult:
        self.sent.append(text)
        return self.agents.pop(0)(text, self)


def edits(text: str, backend: FakeBackend) -> TurnResult:
    backend.draft = DRAFT
    return TurnResult(text="Here is your video.")


def asks(text: str, backend: FakeBackend) -> TurnResult:
    return TurnResult(text=QUESTION)


def starts_a_tool_and_goes_quiet(text: str, backend: FakeBackend) -> TurnResult:
    return TurnResult(tool_calls=[ToolCall("generate_video_with_seedance")])


def throttled_mid_stream(text: str, backend: FakeBackend) -> TurnResult:
    return TurnResult(error="slow down", failure=RateLimited("slow down", retry_after=3))


def edits_then_errors(text: str, backend: FakeBackend) -> TurnResult:
    backend.draft = DRAFT
    return throttled_mid_stream(text, backend)


class UnitContext(StepContext):
    def save(self, **values: Any) -> None:
        self.checkpoint.update(values)


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    monkeypatch.setenv("VERIFY_TIMEOUT_S", "300")
    get_settings.cache_clear()


def context(backend: FakeBackend, **job_input: Any) -> UnitContext:
    return UnitContext(
        job_id=uuid.uuid4(),
        step=JobState.PROMPT,
        step_attempts=1,
        tenant_id=uuid.uuid4(),
        input={"title": "Trail bottle", "messages": ["Generate a video"], **job_input},
        options={},
        checkpoint={"session_id": "5529"},
        token=ResolvedToken("nmv_usr_x", "registered", "shared"),
        client=cast(NemoClient, backend),
        lease_s=60,
    )


def test_a_turn_that_edits_is_done_after_one_send_and_two_state_reads() -> None:
    backend = FakeBackend(edits)
    outcome = prompt_step(context(backend))
    assert isinstance(outcome, Advance)
    assert len(backend.sent) == 1
    assert backend.state_reads == 2  # before and after; the final check reuses the last read


def test_a_question_gets_one_follow_up_in_the_same_session_from_the_jobs_inputs() -> None:
    backend = FakeBackend(asks, edits)
    outcome = prompt_step(context(backend, description="Keeps water cold", duration_s=5))
    assert isinstance(outcome, Advance)
    assert len(backend.sent) == 2
    follow_up = backend.sent[1]
    assert "decide for yourself" in follow_up.lower()
    assert "Trail bottle" in follow_up and "Keeps water cold" in follow_up


def test_an_agent_that_still_edits_nothing_fails_agent_no_edit_with_its_reply() -> None:
    backend = FakeBackend(asks, asks)
    job = context(backend)
    outcome = prompt_step(job)
    assert isinstance(outcome, Fail)
    assert outcome.code == "agent_no_edit"
    assert QUESTION in outcome.message
    assert len(backend.sent) == 2
    assert job.checkpoint["messages"][0]["reply"] == QUESTION


def test_a_reply_with_text_is_not_taken_as_an_edit() -> None:
    backend = FakeBackend(asks, asks)
    outcome = prompt_step(context(backend))
    assert not isinstance(outcome, Advance)


def test_a_turn_whose_tools_may_still_land_is_verified_before_anything_is_sent_again() -> None:
    backend = FakeBackend(starts_a_tool_and_goes_quiet)
    job = context(backend)
    first = prompt_step(job)
    assert isinstance(first, Wait)
    assert len(backend.sent) == 1
    job.checkpoint.update(first.checkpoint)
    again = prompt_step(job)  # still inside the verify window: no second send
    assert isinstance(again, Wait) and len(backend.sent) == 1
    backend.draft = DRAFT  # the edit lands late
    assert isinstance(prompt_step(job), Advance)
    assert len(backend.sent) == 1


def test_a_code_inside_the_stream_with_nothing_changed_raises_its_error_and_is_not_a_send() -> None:
    backend = FakeBackend(throttled_mid_stream)
    job = context(backend)
    with pytest.raises(RateLimited):
        prompt_step(job)
    assert job.checkpoint["messages"][0]["sends"] == 0
    assert job.checkpoint["messages"][0]["status"] == "pending"


def test_a_code_inside_the_stream_after_the_edit_landed_counts_the_edit() -> None:
    backend = FakeBackend(edits_then_errors)
    assert isinstance(prompt_step(context(backend)), Advance)


def cut_short(text: str, backend: FakeBackend) -> TurnResult:
    return TurnResult(cut=True)


def test_a_follow_up_whose_turn_was_cut_is_sent_once_more_after_the_state_settled() -> None:
    backend = FakeBackend(asks, cut_short, edits)
    job = context(backend)
    first = prompt_step(job)
    assert isinstance(first, Wait) and len(backend.sent) == 2
    job.checkpoint.update(first.checkpoint)
    job.checkpoint["messages"][0]["verify_started_at"] = "2000-01-01T00:00:00+00:00"
    assert isinstance(prompt_step(job), Advance)
    assert len(backend.sent) == 3
    assert backend.sent[2] == backend.sent[1]  # the follow-up again, not the first message


def test_a_message_cut_twice_fails_no_result_after_one_resend() -> None:
    backend = FakeBackend(cut_short, cut_short)
    job = context(backend)
    for _ in range(2):
        waiting = prompt_step(job)
        assert isinstance(waiting, Wait)
        job.checkpoint.update(waiting.checkpoint)
        job.checkpoint["messages"][0]["verify_started_at"] = "2000-01-01T00:00:00+00:00"
    outcome = prompt_step(job)
    assert isinstance(outcome, Fail) and outcome.code == "no_result"
    assert len(backend.sent) == 2


def refused_before_the_stream(text: str, backend: FakeBackend) -> TurnResult:
    raise RateLimited("slow down", retry_after=1)


def test_a_resend_refused_before_the_agent_saw_it_is_not_counted() -> None:
    backend = FakeBackend(cut_short, refused_before_the_stream, edits)
    job = context(backend)
    waiting = prompt_step(job)
    assert isinstance(waiting, Wait)
    job.checkpoint.update(waiting.checkpoint)
    job.checkpoint["messages"][0]["verify_started_at"] = "2000-01-01T00:00:00+00:00"
    with pytest.raises(RateLimited):
        prompt_step(job)
    assert job.checkpoint["messages"][0]["resends"] == 0
    assert isinstance(prompt_step(job), Advance)
    assert backend.sent == ["Generate a video"] * 3


def test_a_follow_up_refused_before_the_agent_saw_it_goes_out_on_the_next_run() -> None:
    backend = FakeBackend(asks, refused_before_the_stream, edits)
    job = context(backend)
    with pytest.raises(RateLimited):
        prompt_step(job)
    assert isinstance(prompt_step(job), Advance)  # no verification window in between
    assert backend.sent[1] == backend.sent[2] != backend.sent[0]
