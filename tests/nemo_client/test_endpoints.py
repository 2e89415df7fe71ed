"""What the client sends to each endpoint, and how it reads every answer shape of the contract."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from worker.nemo import (
    BackendUnavailable,
    NemoClient,
    OutputExpired,
    ProtocolError,
    RateLimited,
    SessionState,
)

from ._support import BASE, TOKEN, FakeBackend, answering, client_answering, ok

ATTRIBUTION = {
    "x-skill-source": "video-generator-ki-free",
    "x-skill-version": "1.0.0",
    "x-skill-platform": "unknown",
}


def _every_endpoint(client: NemoClient, tmp_path: Path) -> None:
    media = tmp_path / "a.png"
    media.write_bytes(b"\x89PNG")
    client.create_session()
    client.upload_files("5", [media])
    client.upload_urls("5", ["https://cdn.example/a.png"])
    client.credits()
    client.session_state("5")
    client.send_message("5", "hello")
    client.export("render_1", "5", {"t": []})
    client.render_status("render_1")
    client.cancel_render("render_1")
    client.download("/api/render/proxy/render_1/download", tmp_path / "out.mp4")


def _universal_answer(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/run_sse":
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"")
    if request.url.path.endswith("/download"):
        return httpx.Response(200, content=b"mp4")
    data = {
        "task_id": "t",
        "session_id": "5",
        "user_id": "u",
        "files": [],
        "available": 1,
        "id": "render_1",
        "status": "pending",
        "state": {},
    }
    return httpx.Response(200, json=ok(data))


def test_attribution_and_bearer_headers_go_on_every_call(tmp_path: Path) -> None:
    backend = FakeBackend(_universal_answer)
    _every_endpoint(backend.client(), tmp_path)
    assert len(backend.requests) == 10
    for request in backend.requests:
        for name, value in ATTRIBUTION.items():
            assert request.headers[name] == value, request.url
        assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_before_request_hook_runs_before_every_call(tmp_path: Path) -> None:
    backend = FakeBackend(_universal_answer)
    calls: list[int] = []
    client = backend.client(before_request=lambda: calls.append(len(backend.requests)))
    _every_endpoint(client, tmp_path)
    assert calls == list(range(10))


def test_a_before_request_timeout_becomes_rate_limited_and_sends_nothing() -> None:
    class Busy(TimeoutError):
        retry_after = 4.5

    def hook() -> None:
        raise Busy()

    backend = FakeBackend(_universal_answer)
    with pytest.raises(RateLimited) as raised:
        backend.client(before_request=hook).credits()
    assert raised.value.retry_after == 4.5
    assert raised.value.http_status is None
    assert backend.requests == []


def test_anonymous_token_sends_client_id_and_no_bearer() -> None:
    expires = "2030-01-08T00:00:00Z"
    data = {"token": "nmv_usr_new", "user_id": "anon_1", "expires_at": expires, "credits": 100}
    backend = answering(200, ok(data))
    token = backend.client().anonymous_token("4f1c-client")
    request = backend.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/api/auth/anonymous-token"
    assert request.headers["x-client-id"] == "4f1c-client"
    assert "authorization" not in request.headers
    assert request.headers["x-skill-source"] == "video-generator-ki-free"
    assert token.token == "nmv_usr_new"
    assert token.user_id == "anon_1"
    assert token.credits == 100
    assert token.expires_at == datetime(2030, 1, 8, tzinfo=UTC)
    assert "nmv_usr_new" not in repr(token)


def test_anonymous_token_accepts_the_older_expires_in_seconds() -> None:
    data = {"token": "nmv_usr_x", "user_id": "anon_1", "expires_in": 3600}
    token = client_answering(200, ok(data)).anonymous_token("c")
    left = token.expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)


def test_token_can_be_replaced_on_a_live_client() -> None:
    backend = answering(200, ok({"available": 1, "frozen": 0, "total": 1}))
    client = backend.client()
    client.token = "nmv_usr_second"
    client.credits()
    assert backend.requests[0].headers["authorization"] == "Bearer nmv_usr_second"
    assert "nmv_usr_second" not in repr(client)


def test_create_session_posts_task_name_and_language() -> None:
    data = {"task_id": "task_1", "session_id": 5529798706024415232, "user_id": "anon_1"}
    backend = answering(200, ok(data))
    session = backend.client().create_session(language="de")
    request = backend.requests[0]
    assert request.url.path == "/api/tasks/me/with-session/nemo_agent"
    assert json.loads(request.content) == {"task_name": "project", "language": "de"}
    assert session.session_id == "5529798706024415232"
    assert session.task_id == "task_1"


def test_upload_files_sends_one_multipart_files_part_per_file_streamed_from_disk(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "clip.mp4", tmp_path / "logo.png"
    first.write_bytes(b"MP4DATA" * 1000)
    second.write_bytes(b"PNGDATA")
    answer = {
        "files": [
            {
                "filename": "clip.mp4",
                "file_type": "video",
                "cdn_url": "https://c/1",
                "duration": 4.5,
                "width": 1920,
                "height": 1080,
                "fps": 30,
                "hash": "h",
            }
        ],
        "session_state_applied": True,
    }
    backend = answering(200, ok(answer))
    media = backend.client().upload_files("5529", [first, str(second)])
    request = backend.requests[0]
    assert request.url.path == "/api/upload-video/nemo_agent/me/5529"
    assert request.headers["content-type"].startswith("multipart/form-data")
    body = request.content
    assert body.count(b'name="files"') == 2
    assert b'filename="clip.mp4"' in body and b'filename="logo.png"' in body
    assert b"MP4DATA" * 1000 in body
    assert media[0].file_type == "video"
    assert media[0].cdn_url == "https://c/1"
    assert (media[0].width, media[0].height, media[0].fps) == (1920, 1080, 30.0)


def test_upload_files_reads_files_as_streams_not_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x" * 10)
    seen: list[object] = []
    original = httpx.Client.request

    def spy(self: httpx.Client, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        seen.extend(part[1][1] for part in kwargs.get("files") or [])
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(httpx.Client, "request", spy)
    client_answering(200, ok({"files": []})).upload_files("5", [path])
    assert len(seen) == 1
    assert hasattr(seen[0], "read") and not isinstance(seen[0], bytes)
    assert seen[0].closed  # type: ignore[attr-defined]


def test_upload_urls_sends_json_with_source_type_url() -> None:
    backend = answering(
        200, ok({"files": [{"filename": "a.jpg", "fileType": "image", "cdnUrl": "https://c/a"}]})
    )
    media = backend.client().upload_urls("5", ["https://img.example/a.jpg"])
    assert json.loads(backend.requests[0].content) == {
        "urls": ["https://img.example/a.jpg"],
        "source_type": "url",
    }
    assert media[0].cdn_url == "https://c/a"
    assert media[0].file_type == "image"


def test_credits_reads_available_frozen_and_total() -> None:
    backend = answering(200, ok({"available": 25000, "frozen": 40, "total": 25040}))
    credits = backend.client().credits()
    assert backend.requests[0].url.path == "/api/credits/balance/simple"
    assert (credits.available, credits.frozen, credits.total) == (25000, 40, 25040)


def test_credits_total_defaults_to_available_plus_frozen() -> None:
    credits = client_answering(200, {"available": 10, "frozen": 5}).credits()
    assert credits.total == 15


DRAFT = {"t": [{"tt": 0, "sg": [{"d": 10000, "m": {"title": "city"}}]}]}


def test_session_state_reads_draft_media_and_hashes_the_draft_canonically() -> None:
    data = {
        "session_id": "5",
        "task_id": "t",
        "task_name": "project",
        "state": {"video_infos": [{"a": 1}], "draft": DRAFT, "generated_media": [1, 2]},
    }
    backend = answering(200, ok(data))
    state = backend.client().session_state("5")
    assert backend.requests[0].url.path == "/api/state/nemo_agent/me/5/latest"
    assert state.draft == DRAFT
    assert state.media_count == 2
    assert state.video_infos == [{"a": 1}]
    assert state.has_timeline
    reordered = json.loads(json.dumps(DRAFT, sort_keys=True))
    same = SessionState.parse({"state": {"draft": reordered}})
    assert same.draft_hash == state.draft_hash
    changed = SessionState.parse({"state": {"draft": {"t": []}}})
    assert changed.draft_hash != state.draft_hash
    assert not changed.has_timeline


def test_session_state_without_draft_has_a_stable_hash_and_no_media() -> None:
    state = client_answering(200, ok({"state": {}})).session_state("5")
    assert state.draft is None
    assert state.media_count == 0
    assert state.draft_hash == SessionState.parse({"state": {}}).draft_hash


def test_session_ids_are_quoted_into_the_path() -> None:
    backend = answering(200, ok({"state": {}}))
    backend.client().session_state("../credits")
    assert backend.requests[0].url.raw_path == b"/api/state/nemo_agent/me/..%2Fcredits/latest"


def test_export_posts_id_session_draft_and_default_output() -> None:
    answer = {"success": True, "data": {"id": "render_1", "status": "pending", "progress": 5}}
    backend = answering(200, answer)
    status = backend.client().export("render_1", "5", DRAFT)
    request = backend.requests[0]
    assert request.url.path == "/api/render/proxy/lambda"
    assert json.loads(request.content) == {
        "id": "render_1",
        "sessionId": "5",
        "draft": DRAFT,
        "output": {"format": "mp4", "quality": "high"},
    }
    assert (status.id, status.status, status.progress) == ("render_1", "pending", 5)


def test_export_passes_a_given_output_untouched() -> None:
    backend = answering(200, {"success": True, "data": {"id": "r", "status": "pending"}})
    output = {"format": "mp4", "quality": "medium", "resolution": "720p"}
    backend.client().export("r", "5", DRAFT, output=output)
    assert json.loads(backend.requests[0].content)["output"] == output


@pytest.mark.parametrize(
    "body",
    [
        {
            "success": True,
            "data": {
                "id": "render_1",
                "status": "completed",
                "progress": 100,
                "outputUrl": "https://cdn/o.mp4",
                "createdAt": "x",
            },
        },
        {
            "taskId": "render_1",
            "status": "completed",
            "progress": 100,
            "output": {"url": "https://cdn/o.mp4", "duration": 12.5, "size": 2048},
        },
        {
            "success": True,
            "data": {
                "id": "render_1",
                "status": "completed",
                "progress": 100,
                "output": {"url": "https://cdn/o.mp4"},
            },
        },
        {
            "code": 0,
            "message": "ok",
            "data": {
                "render_id": "render_1",
                "status": "COMPLETED",
                "progress": 100,
                "output_url": "https://cdn/o.mp4",
            },
        },
    ],
)
def test_render_status_reads_every_shape_of_a_completed_render(body: dict[str, Any]) -> None:
    backend = answering(200, body)
    status = backend.client().render_status("render_1")
    assert backend.requests[0].url.path == "/api/render/proxy/lambda/render_1"
    assert status.id == "render_1"
    assert status.status == "completed" and status.succeeded and status.is_final
    assert status.progress == 100
    assert status.output_url == "https://cdn/o.mp4"


def test_render_status_reads_duration_and_size_from_the_output_object() -> None:
    body = {
        "taskId": "r",
        "status": "completed",
        "progress": 100,
        "output": {"url": "u", "duration": 12.5, "size": 2048},
    }
    status = client_answering(200, body).render_status("r")
    assert (status.duration, status.size) == (12.5, 2048)


def test_a_failed_render_carries_the_backends_error_text() -> None:
    body = {
        "success": True,
        "data": {"id": "r", "status": "failed", "progress": 40, "error": "ffmpeg exited 1"},
    }
    status = client_answering(200, body).render_status("r")
    assert status.status == "failed" and status.is_final and not status.succeeded
    assert status.error == "ffmpeg exited 1"


def test_a_processing_render_is_not_final() -> None:
    body = {"success": True, "data": {"id": "r", "status": "processing", "progress": 55}}
    status = client_answering(200, body).render_status("r")
    assert (status.status, status.progress, status.is_final) == ("processing", 55, False)


def test_cancel_render_posts_to_the_cancel_path() -> None:
    backend = answering(200, {"success": True, "data": {"id": "r", "status": "canceled"}})
    backend.client().cancel_render("r")
    assert backend.requests[0].method == "POST"
    assert backend.requests[0].url.path == "/api/render/proxy/lambda/r/cancel"


def test_cancel_render_accepts_an_empty_answer() -> None:
    FakeBackend(lambda request: httpx.Response(204)).client().cancel_render("r")


def test_render_download_url_is_absolute_on_the_base() -> None:
    client = client_answering(200, {})
    assert client.render_download_url("render_1") == f"{BASE}/api/render/proxy/render_1/download"


def test_download_streams_a_relative_url_with_credentials_into_the_file(tmp_path: Path) -> None:
    backend = FakeBackend(lambda request: httpx.Response(200, content=iter([b"a" * 10, b"b" * 5])))
    dest = tmp_path / "video.mp4"
    written = backend.client().download("/api/render/proxy/r/download", dest)
    assert written == 15
    assert dest.read_bytes() == b"a" * 10 + b"b" * 5
    assert backend.requests[0].url == f"{BASE}/api/render/proxy/r/download"
    assert backend.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert list(tmp_path.iterdir()) == [dest]


def test_download_from_another_host_sends_no_credentials(tmp_path: Path) -> None:
    backend = FakeBackend(lambda request: httpx.Response(200, content=b"mp4"))
    backend.client().download("https://cdn.example/out/o.mp4", tmp_path / "o.mp4")
    request = backend.requests[0]
    assert request.url.host == "cdn.example"
    assert "authorization" not in request.headers


def test_a_failed_download_leaves_no_file_behind(tmp_path: Path) -> None:
    def cut(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            yield b"partial"
            raise httpx.RemoteProtocolError("peer closed connection")

        return httpx.Response(200, content=body())

    dest = tmp_path / "o.mp4"
    with pytest.raises(BackendUnavailable):
        FakeBackend(cut).client().download("/o.mp4", dest)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputExpired):
        client_answering(404, {"detail": "Not Found"}).download("/o.mp4", dest)
    assert list(tmp_path.iterdir()) == []


def test_the_client_closes_as_a_context_manager() -> None:
    with client_answering(200, ok({"available": 1})) as client:
        client.credits()
    with pytest.raises(RuntimeError):
        client.credits()


@pytest.mark.parametrize(
    "body",
    [
        {"code": 0, "message": "success", "data": {"available": 7, "frozen": 1, "total": 8}},
        {"code": "0", "msg": "ok", "data": {"available": 7, "frozen": 1, "total": 8}},
        {"success": True, "data": {"available": 7, "frozen": 1, "total": 8}, "error": None},
        {"available": 7, "frozen": 1, "total": 8},
    ],
    ids=["code-envelope", "code-as-string", "success-envelope", "bare-object"],
)
def test_every_envelope_shape_yields_the_same_result(body: dict[str, Any]) -> None:
    credits = client_answering(200, body).credits()
    assert (credits.available, credits.frozen, credits.total) == (7, 1, 8)


def test_a_success_envelope_without_the_expected_object_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        client_answering(200, {"code": 0, "message": "ok", "data": None}).credits()


def test_a_cookie_the_backend_sets_is_sent_back_and_answers_without_one_keep_none() -> None:
    data = {"task_id": "task_1", "session_id": "s1", "user_id": "anon_1"}
    answers = iter(
        [
            httpx.Response(200, json=ok(data)),
            httpx.Response(200, json=ok(data), headers={"Set-Cookie": "node=b7; Path=/"}),
            httpx.Response(200, json=ok(data)),
        ]
    )
    backend = FakeBackend(lambda request: next(answers))
    client = backend.client()
    for _ in range(3):
        client.create_session()
    sent = [request.headers.get("cookie") for request in backend.requests]
    assert sent == [None, None, "node=b7"]
