"""Each endpoint and each code of nemo-api.md, over real HTTP to an emulator subprocess."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import REGISTERED_TOKEN
from emulator_helpers import ATTRIBUTION, NemoTestClient, make_image, texts

from tests.support.emulator_proc import EmulatorProcess, start_emulator


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """Small upload limit, short token life."""
    proc = start_emulator(
        tmp_path_factory.mktemp("limited"),
        time_scale=0.01,
        extra_args=["--max-upload-mb", "0.05", "--anon-token-ttl", "1.0"],
    )
    yield proc
    proc.stop()


def test_anonymous_token_without_client_id_is_http_400(emu: EmulatorProcess) -> None:
    response = httpx.post(f"{emu.base_url}/api/auth/anonymous-token", headers=ATTRIBUTION)
    assert response.status_code == 400
    assert set(response.json()) >= {"code", "message"}


def test_anonymous_token_has_100_credits_and_is_stable_per_client_id(emu: EmulatorProcess) -> None:
    client = NemoTestClient(emu.base_url)
    client_id = str(uuid.uuid4())
    first = client.anonymous(client_id)
    second = client.anonymous(client_id)
    assert first["token"].startswith("nmv_usr_") and first["user_id"].startswith("anon_")
    assert first["credits"] == 100 and "expires_at" in first
    assert second["token"] == first["token"]
    assert client.balance() == {"available": 100, "frozen": 0, "total": 100}


def test_calls_without_or_with_a_bad_token_answer_code_1001(emu: EmulatorProcess) -> None:
    bare = httpx.get(f"{emu.base_url}/api/credits/balance/simple", headers=ATTRIBUTION)
    assert bare.status_code == 200 and bare.json()["code"] == 1001
    client = NemoTestClient(emu.base_url, token="nmv_usr_bogus")
    assert client.http.post("/api/tasks/me/with-session/nemo_agent").json()["code"] == 1001
    assert emu.stats()["missing_headers"]["auth"]["count"] >= 1


def test_expired_anonymous_token_answers_1001_and_a_new_one_is_issued(emu: EmulatorProcess) -> None:
    client = NemoTestClient(emu.base_url)
    client_id = str(uuid.uuid4())
    old = client.anonymous(client_id)
    emu.control("expire-tokens")
    assert client.http.get("/api/credits/balance/simple").json()["code"] == 1001
    renewed = client.anonymous(client_id)
    assert renewed["token"] != old["token"] and renewed["user_id"] == old["user_id"]
    assert client.http.get("/api/credits/balance/simple").json()["code"] == 0


def test_anonymous_token_expires_after_its_ttl(limited: EmulatorProcess) -> None:
    client = NemoTestClient(limited.base_url)
    client.anonymous()
    deadline = time.monotonic() + 10
    code = 0
    while time.monotonic() < deadline and code != 1001:
        time.sleep(0.3)
        code = client.http.get("/api/credits/balance/simple").json().get("code", 0)
    assert code == 1001


def test_registered_token_has_a_large_balance(emu: EmulatorProcess) -> None:
    client = NemoTestClient(emu.base_url, token=REGISTERED_TOKEN)
    assert client.balance()["available"] == 1_000_000
    assert REGISTERED_TOKEN not in str(emu.stats())


def test_unknown_or_lost_session_answers_1002_and_run_sse_404(emu: EmulatorProcess) -> None:
    client = NemoTestClient(emu.base_url, token=REGISTERED_TOKEN)
    state = client.http.get("/api/state/nemo_agent/me/999/latest").json()
    assert state["code"] == 1002
    session_id = client.session()
    emu.control(f"lose-session/{session_id}")
    assert client.http.get(f"/api/state/nemo_agent/me/{session_id}/latest").json()["code"] == 1002
    body = {"session_id": session_id, "new_message": {"parts": [{"text": "hi"}]}}
    response = client.http.post("/run_sse", json=body)
    assert response.status_code == 404
    assert response.json() == {"detail": f"Session not found: {session_id}"}


def test_state_accepts_the_user_id_as_path_segment(emu: EmulatorProcess) -> None:
    client = NemoTestClient(emu.base_url)
    user_id = client.anonymous()["user_id"]
    session_id = client.session()
    answer = client.http.get(f"/api/state/nemo_agent/{user_id}/{session_id}/latest").json()
    assert answer["code"] == 0
    assert set(answer["data"]["state"]) >= {
        "video_infos", "draft", "canvas_config", "video_analyses", "generated_media",
    }  # fmt: skip


def test_out_of_credits_is_2001_with_the_bind_link(emu: EmulatorProcess, tmp_path: Path) -> None:
    client = NemoTestClient(emu.base_url)
    user_id = client.anonymous()["user_id"]
    session_id = client.session()
    client.upload(session_id, make_image(tmp_path / "a.png", (200, 20, 20)))
    client.send(session_id, "generate a 2-second video")
    assert client.balance() == {"available": 0, "frozen": 0, "total": 0}
    body = {"session_id": session_id, "new_message": {"parts": [{"text": "make it 16:9"}]}}
    answer = client.http.post("/run_sse", json=body).json()
    assert answer["code"] == 2001
    assert f"https://nemovideo.com/register?bind={user_id}" in answer["message"]
    emu.control("credits", {"user_id": user_id, "amount": 50})
    assert client.balance()["available"] == 50


def test_message_asking_for_nothing_answers_text_and_costs_nothing(emu: EmulatorProcess) -> None:
    client = NemoTestClient(emu.base_url)
    client.anonymous()
    session_id = client.session()
    events = client.send(session_id, "hello, what can you do?")
    assert texts(events) and client.balance()["available"] == 100


def test_upload_type_is_judged_by_content_not_name(emu: EmulatorProcess, tmp_path: Path) -> None:
    client = NemoTestClient(emu.base_url, token=REGISTERED_TOKEN)
    session_id = client.session()
    fake = tmp_path / "photo.jpg"
    fake.write_text("just some text, not a picture\n" * 20)
    answer = client.upload(session_id, fake)
    assert answer["code"] == 4001 and "jpg" in answer["message"]
    real = make_image(tmp_path / "picture.txt", (10, 20, 30))
    good = client.upload(session_id, real)
    assert good["code"] == 0 and good["data"]["files"][0]["file_type"] == "image"


def test_upload_over_the_size_limit_is_4002(limited: EmulatorProcess, tmp_path: Path) -> None:
    client = NemoTestClient(limited.base_url)
    client.anonymous()
    session_id = client.session()
    big = tmp_path / "big.png"
    big.write_bytes(make_image(tmp_path / "b.png", (1, 2, 3)).read_bytes() + b"\0" * 100_000)
    assert client.upload(session_id, big)["code"] == 4002


def test_upload_by_url_fetches_loopback_and_refuses_other_hosts(
    emu: EmulatorProcess, tmp_path: Path
) -> None:
    client = NemoTestClient(emu.base_url, token=REGISTERED_TOKEN)
    session_id = client.session()
    first = client.upload(session_id, make_image(tmp_path / "a.png", (0, 90, 0)))
    url = first["data"]["files"][0]["cdn_url"]
    path = f"/api/upload-video/nemo_agent/me/{session_id}"
    fetched = client.http.post(path, json={"urls": [url], "source_type": "url"}).json()
    assert fetched["code"] == 0 and fetched["data"]["files"][0]["width"] == 640
    refused = client.http.post(path, json={"urls": ["http://example.com/a.png"]}).json()
    assert refused["code"] != 0


def test_export_without_attribution_headers_is_http_402(emu: EmulatorProcess) -> None:
    headers = {"Authorization": f"Bearer {REGISTERED_TOKEN}"}
    body = {"id": "render_x", "sessionId": "1", "draft": {"t": [{"tt": 0, "sg": [{"d": 1000}]}]}}
    response = httpx.post(f"{emu.base_url}/api/render/proxy/lambda", json=body, headers=headers)
    assert response.status_code == 402
    missing = emu.stats()["missing_headers"]["attribution"]
    assert "POST /api/render/proxy/lambda" in missing["endpoints"]


def test_export_refuses_an_empty_draft_and_a_reused_render_id(emu: EmulatorProcess) -> None:
    client = NemoTestClient(emu.base_url, token=REGISTERED_TOKEN)
    empty = client.render("1", {"t": [{"tt": 0, "sg": []}]})
    assert empty.status_code == 400 and empty.json()["success"] is False
    draft = {"ar": "1:1", "d": 1000, "t": [{"tt": 0, "sg": [{"s": 0, "d": 1000, "m": {}}]}]}
    assert client.render("1", draft, "render_once").status_code == 200
    again = client.render("1", draft, "render_once")
    assert again.status_code == 409
    assert again.json()["success"] is False and again.json()["error"] == "render id already used"
    unknown = client.http.get("/api/render/proxy/lambda/render_never")
    assert unknown.status_code == 404


def test_token_bucket_answers_429_with_retry_after(limited: EmulatorProcess) -> None:
    client = NemoTestClient(limited.base_url)
    client.anonymous()
    limited.control("config", {"rate_limit_rps": 2, "rate_limit_burst": 3})
    try:
        statuses = [client.http.get("/api/credits/balance/simple") for _ in range(8)]
    finally:
        limited.control("config", {"rate_limit_rps": 0})
    limited_answers = [r for r in statuses if r.status_code == 429]
    assert limited_answers, [r.status_code for r in statuses]
    assert int(limited_answers[0].headers["Retry-After"]) >= 1
    assert set(limited_answers[0].json()) >= {"code", "message"}
    assert limited.stats()["faults"]["rate_limit"] >= 1
