"""End to end: every backend variant of nemo-api.md's "What no source rules out", served by the
emulator over HTTP to real workers, one by one and all together; each job ends as it should,
with one render of a draft the agent edited."""

from pathlib import Path
from typing import Any

import pytest

from core.models import Job
from tests.worker.helpers import ApiUser, api_user, describe
from tests.worker.stack import Stack, running_stack
from tests.worker.test_error_paths_e2e import RATE, RUN_SSE, calls, finished, item, submit

JOBS = 4


def variant_stack(tmp_path: Path, *variants: str, rate: float = 1.0, **options: Any) -> Any:
    args = [*RATE, "--variant-rate", str(rate)]
    for name in variants:
        args += ["--variant", name]
    return running_stack(tmp_path, emulator_args=tuple(args), **options)


def run_batch(stack: Stack, user: ApiUser, jobs: int = JOBS, timeout_s: float = 120) -> list[Job]:
    image = user.upload_image("teal")
    return finished(submit(user, [item(n, [image]) for n in range(jobs)]), timeout_s)


def assert_all_succeeded_with_one_render_each(stack: Stack, jobs: list[Job]) -> dict[str, Any]:
    assert all(job.state == "succeeded" for job in jobs), describe(jobs)
    stats: dict[str, Any] = stack.emulator.stats()
    renders = stats["renders"]
    assert renders["posted"] == len(jobs), renders
    assert renders["duplicate_drafts"] == []
    assert renders["unedited_draft"] == 0
    return stats


def test_codes_in_200_bodies_are_read_as_their_meaning_and_every_job_succeeds(
    tmp_path: Path,
) -> None:
    with variant_stack(tmp_path, "codes_in_200", rate=0.6) as stack, api_user() as user:
        jobs = run_batch(stack, user)
        stats = assert_all_succeeded_with_one_render_each(stack, jobs)
        in_bodies = sum(
            n for route in stats["requests"].values() for k, n in route.items() if k == "200:429"
        )
        assert in_bodies > 0, "the variant sent no 429 in a 200 body: nothing was tested"


def test_codes_inside_the_stream_are_retried_as_their_meaning_without_a_lost_edit(
    tmp_path: Path,
) -> None:
    with variant_stack(tmp_path, "stream_codes", rate=0.5) as stack, api_user() as user:
        jobs = run_batch(stack, user)
        assert_all_succeeded_with_one_render_each(stack, jobs)
        assert sum(calls(stack, RUN_SSE).values()) > len(jobs), "no turn met a code"


def test_a_silence_longer_than_the_request_timeout_is_waited_out(tmp_path: Path) -> None:
    settings = {"NEMO_REQUEST_TIMEOUT_S": "1"}
    with variant_stack(tmp_path, "long_silence", settings=settings) as stack, api_user() as user:
        seconds = 3.0 / 0.01  # the stack runs the emulator at time scale 0.01
        stack.emulator.control("config", {"reply_delay_s": [seconds, seconds]})
        jobs = run_batch(stack, user)
        stats = assert_all_succeeded_with_one_render_each(stack, jobs)
        assert stats["turns"].get("canceled_on_leave", 0) == 0, "a client left a silent turn"


def test_a_first_turn_that_asks_a_question_gets_one_follow_up_and_the_job_succeeds(
    tmp_path: Path,
) -> None:
    with variant_stack(tmp_path, "asks_question") as stack, api_user() as user:
        jobs = run_batch(stack, user)
        stats = assert_all_succeeded_with_one_render_each(stack, jobs)
        assert stats["turns"]["questions"] == len(jobs)
        assert sum(calls(stack, RUN_SSE).values()) == 2 * len(jobs)


def test_an_agent_that_never_edits_fails_agent_no_edit_with_its_question_and_no_render(
    tmp_path: Path,
) -> None:
    with variant_stack(tmp_path, "stubborn_agent") as stack, api_user() as user:
        jobs = run_batch(stack, user, jobs=2)
        for job in jobs:
            assert job.state == "failed" and job.error_code == "agent_no_edit", describe(jobs)
            assert "which style do you prefer" in (job.error_message or "")
        assert stack.emulator.stats()["renders"]["posted"] == 0
        assert sum(calls(stack, RUN_SSE).values()) == 2 * len(jobs)  # the message, one follow-up


def test_an_expired_output_url_is_refreshed_without_rendering_again(tmp_path: Path) -> None:
    with variant_stack(tmp_path, "expired_urls") as stack, api_user() as user:
        jobs = run_batch(stack, user)
        stats = assert_all_succeeded_with_one_render_each(stack, jobs)
        assert stats["renders"]["expired_url_refused"] == len(jobs)


def test_other_status_words_url_keys_and_the_backends_own_render_ids_are_followed(
    tmp_path: Path,
) -> None:
    with variant_stack(tmp_path, "status_words") as stack, api_user() as user:
        jobs = run_batch(stack, user, jobs=6)
        assert_all_succeeded_with_one_render_each(stack, jobs)
        assert all(str(job.checkpoint["backend_render_id"]).startswith("lambda_") for job in jobs)


def test_the_status_success_envelope_is_unwrapped(tmp_path: Path) -> None:
    with variant_stack(tmp_path, "status_envelope") as stack, api_user() as user:
        assert_all_succeeded_with_one_render_each(stack, run_batch(stack, user))


def test_a_strict_backend_refusing_fresh_anonymous_tokens_again_does_not_fail_jobs(
    tmp_path: Path,
) -> None:
    emulator_args = (*RATE, "--anon-credits", "1000000")
    with (
        running_stack(tmp_path, registered=False, emulator_args=emulator_args) as stack,
        api_user() as user,
    ):
        stack.emulator.control("config", {"token_expiry_rate": 0.15})
        jobs = run_batch(stack, user, jobs=6, timeout_s=180)
        assert_all_succeeded_with_one_render_each(stack, jobs)
        assert stack.emulator.stats()["faults"].get("token_expiry", 0) >= 2


@pytest.mark.parametrize("seed", [3])
def test_every_variant_at_once(tmp_path: Path, seed: int) -> None:
    with (
        variant_stack(tmp_path, "all", rate=0.4, seed=seed) as stack,
        api_user() as user,
    ):
        jobs = run_batch(stack, user, jobs=8, timeout_s=180)
        assert_all_succeeded_with_one_render_each(stack, jobs)
