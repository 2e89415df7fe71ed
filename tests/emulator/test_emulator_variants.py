"""The backend variants of nemo-api.md's "What no source rules out", each served on request and
checked over real HTTP against the contract's own words."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.__main__ import config_from_args
from emulator.variants import VARIANTS
from tests.emulator.conftest import REGISTERED_TOKEN
from tests.emulator.emulator_helpers import NemoTestClient, texts
from tests.support.emulator_proc import EmulatorProcess, start_emulator
from tests.support.waiting import wait_for

GENERATE = 'Generate a 4-second square video for "Trail bottle". Add music.'


@pytest.fixture
def nemo(emu: EmulatorProcess) -> NemoTestClient:
    return NemoTestClient(emu.base_url, REGISTERED_TOKEN)


def serve(emu: EmulatorProcess, *variants: str, **fields: Any) -> None:
    emu.control("config", {"variants": list(variants), "variant_rate": 1.0, **fields})


@pytest.fixture(autouse=True)
def _no_variants_after(emu: EmulatorProcess) -> Iterator[None]:
    yield
    ideal = {"reply_delay_s": [0, 0], "render_delay_s": [0, 0], "stream_error_rate": 0.0}
    emu.control("config", {"variants": [], **ideal})


def test_variant_flags_are_repeatable_and_all_means_every_one_but_the_stubborn_agent() -> None:
    chosen = config_from_args(["--variant", "codes_in_200", "--variant", "long_silence"])
    assert chosen.profile.variants == ("codes_in_200", "long_silence")
    everything = config_from_args(["--variant", "all"]).profile.variants
    assert set(everything) == set(VARIANTS) - {"stubborn_agent"}
    with pytest.raises(ValueError, match="unknown variant"):
        config_from_args(["--variant", "nonsense"])


def test_a_variant_given_on_the_command_line_is_served(tmp_path: Path) -> None:
    proc = start_emulator(tmp_path, extra_args=("--variant", "codes_in_200", "--variant-rate", "0"))
    try:
        answer = httpx.post(f"{proc.base_url}/api/auth/anonymous-token")  # no X-Client-Id
        assert answer.status_code == 200
        assert answer.json()["code"] == 400
        assert proc.stats()["profile"]["variants"] == ["codes_in_200"]
    finally:
        proc.stop()


def test_codes_in_200_sends_errors_and_429s_in_http_200_bodies(
    emu: EmulatorProcess, nemo: NemoTestClient
) -> None:
    serve(emu, "codes_in_200")
    lost = nemo.http.post(
        "/run_sse", json={"session_id": "404404", "new_message": {"parts": [{"text": "hi"}]}}
    )
    assert lost.status_code == 200
    assert lost.json()["code"] == 404 and "Session not found" in lost.json()["message"]
    answers = [nemo.http.get("/api/credits/balance/simple") for _ in range(30)]
    throttled = [a for a in answers if a.json().get("code") == 429]
    assert throttled and all(a.status_code == 200 for a in throttled)
    assert any("retry-after" not in a.headers for a in throttled)


def test_stream_codes_ends_a_turn_on_a_429_inside_the_stream_without_an_edit(
    emu: EmulatorProcess, nemo: NemoTestClient
) -> None:
    serve(emu, "stream_codes")
    session = nemo.session()
    events = nemo.send(session, GENERATE)
    assert events[-1]["code"] == 429
    assert nemo.state(session)["draft"] == {}


def test_stream_codes_tells_out_of_credits_inside_the_stream(emu: EmulatorProcess) -> None:
    serve(emu, "stream_codes", variant_rate=0.0)
    anonymous = NemoTestClient(emu.base_url)
    anonymous.anonymous()
    session = anonymous.session()
    anonymous.send(session, GENERATE)  # 100 credits: the first generation is paid
    events = anonymous.send(session, GENERATE)
    assert events[-1]["code"] == 2001
    assert "register?bind=anon_" in events[-1]["message"]


def test_asks_question_answers_the_first_message_with_a_question_and_edits_nothing(
    emu: EmulatorProcess, nemo: NemoTestClient
) -> None:
    serve(emu, "asks_question")
    session = nemo.session()
    first = texts(nemo.send(session, GENERATE))
    assert first and first[-1].endswith("?")
    assert nemo.state(session)["draft"] == {}
    nemo.send(session, "Decide for yourself and make the video now.")
    assert nemo.state(session)["draft"]["t"]


def test_the_stubborn_agent_never_edits(emu: EmulatorProcess, nemo: NemoTestClient) -> None:
    serve(emu, "stubborn_agent")
    session = nemo.session()
    for message in (GENERATE, "Decide for yourself and make the video now."):
        assert texts(nemo.send(session, message))[-1].endswith("?")
    assert nemo.state(session)["draft"] == {}


def test_long_silence_sends_no_keepalive_and_a_client_that_leaves_cancels_the_turn(
    emu: EmulatorProcess, nemo: NemoTestClient
) -> None:
    serve(emu, "long_silence", reply_delay_s=[150, 150])  # 1.5 s at time scale 0.01
    session = nemo.session()
    body = {"session_id": session, "new_message": {"parts": [{"text": GENERATE}]}}
    with nemo.http.stream("POST", "/run_sse", json=body, timeout=httpx.Timeout(5, read=0.6)):
        pass  # the first events arrive, then nothing: the client leaves
    time.sleep(2.0)  # past the reply delay: an edit would have landed by now
    assert nemo.state(session)["draft"] == {}
    assert emu.stats()["turns"]["canceled_on_leave"] == 1
    started = time.monotonic()
    with nemo.http.stream("POST", "/run_sse", json=body) as response:
        raw = response.read()
    assert time.monotonic() - started >= 1.4
    assert b": keep-alive" not in raw and b"heartbeat" not in raw
    assert nemo.state(session)["draft"]["t"]


def _rendered(nemo: NemoTestClient) -> tuple[str, str]:
    session = nemo.session()
    nemo.send(session, GENERATE)
    render_id = f"render_{uuid.uuid4().hex}"
    answer = nemo.render(session, nemo.state(session)["draft"], render_id).json()
    return render_id, str(answer["data"]["id"])


def test_expired_urls_hand_out_a_dead_url_first_and_a_fresh_one_when_asked_again(
    emu: EmulatorProcess, nemo: NemoTestClient
) -> None:
    serve(emu, "expired_urls")
    render_id, _ = _rendered(nemo)
    first = nemo.wait_render(render_id)["outputUrl"]
    stale = nemo.http.get(first)
    assert stale.status_code in (403, 410) or stale.headers["content-type"].startswith("text/html")
    fresh = nemo.wait_render(render_id)["outputUrl"]
    assert fresh != first
    video = nemo.http.get(fresh)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def _words(nemo: NemoTestClient, render_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        data: dict[str, Any] = nemo.http.get(f"/api/render/proxy/lambda/{render_id}").json()["data"]
        return data if data["status"].lower() not in ("pending", "processing") else None

    found: dict[str, Any] = wait_for(finished, 60, "the render to finish")
    return found


def test_status_words_use_synonyms_other_url_keys_and_the_backends_own_render_id(
    emu: EmulatorProcess, nemo: NemoTestClient
) -> None:
    serve(emu, "status_words")
    seen_words, seen_keys = set(), set()
    for _ in range(6):
        render_id, own_id = _rendered(nemo)
        assert own_id.startswith("lambda_") and own_id != render_id
        data = _words(nemo, own_id)
        assert _words(nemo, render_id)["id"] == own_id  # the posted id still finds it
        seen_words.add(data["status"])
        seen_keys |= set(data) - {"id", "status", "progress", "error"}
        download = nemo.http.get(f"/api/render/proxy/{own_id}/download")
        assert download.content[4:8] == b"ftyp"
    assert seen_words - {"completed"}
    assert seen_keys - {"outputUrl"}


def test_status_envelope_answers_with_status_success_and_null_data_on_cancel(
    emu: EmulatorProcess, nemo: NemoTestClient
) -> None:
    render_id, _ = _rendered(nemo)  # the test client reads the usual envelope
    serve(emu, "status_envelope")
    answer = nemo.http.get("/api/credits/balance/simple").json()
    assert answer["status"] == "success" and "code" not in answer
    assert answer["data"]["available"] > 0
    canceled = nemo.http.post(f"/api/render/proxy/lambda/{render_id}/cancel").json()
    assert canceled == {"status": "success", "data": None}


def test_a_render_of_a_draft_no_agent_turn_produced_is_counted(
    emu: EmulatorProcess, nemo: NemoTestClient
) -> None:
    session = nemo.session()
    nemo.send(session, GENERATE)
    draft = nemo.state(session)["draft"]
    nemo.render(session, draft)
    assert emu.stats()["renders"].get("unedited_draft", 0) == 0
    handmade = {**draft, "title": "never made by the agent"}
    nemo.render(session, handmade)
    assert emu.stats()["renders"]["unedited_draft"] == 1


def test_the_question_is_remembered_until_a_turn_answering_it_edits(
    emu: EmulatorProcess, nemo: NemoTestClient
) -> None:
    serve(emu, "asks_question")
    session = nemo.session()
    nemo.send(session, GENERATE)  # the question
    emu.control("config", {"stream_error_rate": 1.0})
    events = nemo.send(session, "Decide for yourself and make the video now.")
    assert any("error" in event for event in events)
    assert nemo.state(session)["draft"] == {}
    emu.control("config", {"stream_error_rate": 0.0})
    nemo.send(session, "Decide for yourself and make the video now.")
    assert nemo.state(session)["draft"]["t"]
