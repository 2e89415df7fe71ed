"""The job state machine of DESIGN.md, edge by edge."""

import itertools

import pytest

from core.states import (
    FINAL,
    PIPELINE,
    RUNNING,
    WAITING,
    IllegalTransition,
    JobState,
    can_transition,
    check_transition,
    next_step,
)


def test_a_queued_job_can_only_be_admitted_failed_or_canceled() -> None:
    allowed = {state for state in JobState if can_transition("queued", state)}
    assert allowed == {JobState.ADMITTED, JobState.FAILED, JobState.CANCELED}


def test_the_pipeline_runs_in_order_to_succeeded() -> None:
    order = [JobState.QUEUED, *PIPELINE, JobState.SUCCEEDED]
    for current, following in itertools.pairwise(order):
        assert check_transition(current, following) == following
    assert next_step("download") == JobState.SUCCEEDED
    assert next_step("admitted") == JobState.TOKEN


@pytest.mark.parametrize("state", sorted(RUNNING))
def test_a_running_state_can_wait_and_come_back(state: JobState) -> None:
    for waiting in WAITING:
        assert can_transition(state, waiting)
        assert can_transition(waiting, state)


@pytest.mark.parametrize("state", sorted(set(JobState) - FINAL))
def test_every_unfinished_state_can_fail_or_be_canceled(state: JobState) -> None:
    assert can_transition(state, "failed")
    assert can_transition(state, "canceled")


def test_a_lost_session_goes_back_to_the_session_step() -> None:
    assert can_transition("prompt", "session")


def test_only_failed_and_canceled_jobs_return_to_the_queue() -> None:
    assert {state for state in JobState if can_transition(state, "queued")} == {
        JobState.FAILED,
        JobState.CANCELED,
    }


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("succeeded", "queued"),
        ("succeeded", "failed"),
        ("failed", "render"),
        ("canceled", "succeeded"),
        ("queued", "render"),
        ("queued", "succeeded"),
    ],
)
def test_illegal_edges_are_refused_with_both_states_named(current: str, target: str) -> None:
    with pytest.raises(IllegalTransition) as raised:
        check_transition(current, target)
    assert current in str(raised.value)
    assert target in str(raised.value)


def test_an_unknown_state_is_an_error() -> None:
    with pytest.raises(ValueError):
        check_transition("queued", "done")
