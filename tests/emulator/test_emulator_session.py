"""A whole session, from token to a downloaded MP4 checked with PyAV, and follow-up edits."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import av
import imageio_ffmpeg
import pytest
from conftest import REGISTERED_TOKEN
from emulator_helpers import NemoTestClient, make_image, texts, tool_names
from PIL import Image, ImageChops, ImageStat

from tests.support.emulator_proc import EmulatorProcess, start_emulator


def _probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio
        pixel_format = video.codec_context.format
        assert pixel_format is not None, "a decoded video stream has a pixel format"
        return {
            "duration": (container.duration or 0) / 1_000_000,
            "codec": video.codec_context.name,
            "pix_fmt": pixel_format.name,
            "size": (video.codec_context.width, video.codec_context.height),
            "audio": [a.codec_context.name for a in audio],
        }


def _frame_at(path: Path, seconds: float) -> Image.Image:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= seconds:
                return frame.to_image().convert("RGB")
    raise AssertionError(f"no frame at {seconds}s")


def _center(frame: Image.Image) -> Image.Image:
    width, height = frame.size
    return frame.crop((width // 4, height * 2 // 5, width * 3 // 4, height * 3 // 5))


def _difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def _media(tmp_path: Path, name: str, *args: str) -> Path:
    target = tmp_path / name
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", *args, str(target)], check=True)
    return target


def _download(client: NemoTestClient, output_url: str, target: Path) -> Path:
    response = client.http.get(output_url)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    target.write_bytes(response.content)
    return target


def test_session_from_token_to_downloaded_mp4(emu: EmulatorProcess, tmp_path: Path) -> None:
    client = NemoTestClient(emu.base_url)
    client.anonymous()
    emu.control("credits", {"amount": 50})
    session_id = client.session()
    uploaded = client.upload(session_id, make_image(tmp_path / "mug.png", (40, 90, 160)))
    assert uploaded["code"] == 0 and uploaded["data"]["session_state_applied"] is True

    events = client.send(
        session_id,
        'Generate a 3-second 16:9 video for "Acme Mug". Description: A sturdy mug. Hot coffee.',
    )
    assert "generate_video_with_seedance" in tool_names(events)
    assert any(e.get("partial") for e in events) and texts(events)
    events = client.send(session_id, 'add the text "SALE" from 1 to 2 seconds')
    assert tool_names(events) == ["edit_multitrack"]
    assert client.balance() == {"available": 0, "frozen": 0, "total": 0}

    state = client.state(session_id)
    draft = state["draft"]
    assert state["canvas_config"] == {"aspect_ratio": "16:9", "width": 1920, "height": 1080}
    assert {t["tt"] for t in draft["t"]} == {0, 1, 7}
    assert any(s["m"].get("text") == "Acme Mug" for t in draft["t"] for s in t["sg"])

    posted = client.render(session_id, draft, "render_e2e")
    assert posted.status_code == 200 and posted.json()["data"]["status"] == "pending"
    done = client.wait_render("render_e2e")
    assert done["status"] == "completed" and done["progress"] == 100, done
    video = _download(client, done["outputUrl"], tmp_path / "out.mp4")

    probe = _probe(video)
    assert probe["codec"] == "h264" and probe["pix_fmt"] == "yuv420p"
    assert probe["audio"] == ["aac"]
    assert probe["size"] == (480, 270)
    assert abs(probe["duration"] - 3.0) <= 0.1
    inside = _center(_frame_at(video, 1.5))
    before, after = _center(_frame_at(video, 0.5)), _center(_frame_at(video, 2.5))
    assert _difference(inside, before) > 20 and _difference(inside, after) > 20
    assert _difference(before, after) < 10

    ranged = client.http.get(done["outputUrl"], headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100
    stats = emu.stats()
    assert stats["renders"]["by_session"] == {session_id: 1}
    assert stats["requests"]["POST /run_sse"]["200"] == 2


def test_clips_are_video_segments_and_music_is_the_audio_track(
    emu: EmulatorProcess, tmp_path: Path
) -> None:
    clip = _media(tmp_path, "clip.mp4", "-f", "lavfi", "-i", "testsrc=s=320x240:d=1:r=25",
                  "-pix_fmt", "yuv420p", "-c:v", "libx264")  # fmt: skip
    music = _media(tmp_path, "music.m4a", "-f", "lavfi", "-i", "sine=f=440:d=1", "-c:a", "aac")
    client = NemoTestClient(emu.base_url, token=REGISTERED_TOKEN)
    session_id = client.session()
    files = client.upload(session_id, clip, music)["data"]["files"]
    assert [f["file_type"] for f in files] == ["video", "audio"]
    assert files[0]["duration"] == pytest.approx(1.0, abs=0.1) and files[0]["width"] == 320

    events = client.send(session_id, "create a square video of 2 seconds")
    assert "generate_music" not in tool_names(events)
    draft = client.state(session_id)["draft"]
    tracks = {t["tt"]: t["sg"] for t in draft["t"]}
    assert tracks[0][0]["m"]["type"] == "video" and tracks[1][0]["m"]["type"] == "music"

    done = client.wait_render(client.render(session_id, draft).json()["data"]["id"])
    probe = _probe(_download(client, done["outputUrl"], tmp_path / "square.mp4"))
    assert probe["size"] == (270, 270) and abs(probe["duration"] - 2.0) <= 0.1


def test_follow_up_edits_change_the_draft_as_asked(emu: EmulatorProcess, tmp_path: Path) -> None:
    client = NemoTestClient(emu.base_url, token=REGISTERED_TOKEN)
    session_id = client.session()
    client.upload(session_id, make_image(tmp_path / "a.png", (1, 2, 3)))
    client.send(session_id, "generate a 10 second vertical video")
    draft = client.state(session_id)["draft"]
    assert (draft["ar"], draft["d"]) == ("9:16", 10_000)

    client.send(session_id, "change the aspect ratio to 16:9")
    assert client.state(session_id)["canvas_config"]["width"] == 1920
    client.send(session_id, "make it 6 seconds")
    draft = client.state(session_id)["draft"]
    assert draft["d"] == 6000 and sum(s["d"] for s in draft["t"][0]["sg"]) == 6000
    client.send(session_id, "remove the music")
    assert 1 not in {t["tt"] for t in client.state(session_id)["draft"]["t"]}
    events = client.send(session_id, "add some background music")
    assert "generate_music" in tool_names(events)
    client.send(session_id, 'Add a caption "Buy now" at the end')
    draft = client.state(session_id)["draft"]
    overlay = [
        s for t in draft["t"] if t["tt"] == 7 for s in t["sg"] if s["m"]["text"] == "Buy now"
    ]
    assert overlay and overlay[0]["s"] == 3000 and overlay[0]["d"] == 3000
    assert 1 in {t["tt"] for t in draft["t"]}
    assert len(client.state(session_id)["generated_media"]) >= 2
    balance = client.balance()
    assert balance["available"] == 1_000_000 - 100 - 5 * 50 and balance["frozen"] == 0


def test_camel_case_body_keys_are_accepted(emu: EmulatorProcess) -> None:
    client = NemoTestClient(emu.base_url, token=REGISTERED_TOKEN)
    session_id = client.session()
    body = {"appName": "nemo_agent", "userId": "me", "sessionId": session_id,
            "newMessage": {"parts": [{"text": "generate a 2 second video"}]}}  # fmt: skip
    with client.http.stream("POST", "/run_sse", json=body) as response:
        assert response.status_code == 200
        response.read()
    assert client.state(session_id)["draft"]["d"] == 2000


def test_identical_drafts_reuse_the_cached_render_and_cancel_works(emu: EmulatorProcess) -> None:
    client = NemoTestClient(emu.base_url, token=REGISTERED_TOKEN)
    draft = {"ar": "1:1", "d": 1000, "t": [{"tt": 0, "sg": [{"s": 0, "d": 1000, "m": {}}]}]}
    first = client.wait_render(client.render("s", draft).json()["data"]["id"])
    second = client.wait_render(client.render("s", draft).json()["data"]["id"])
    assert first["status"] == second["status"] == "completed"
    stats = emu.stats()["renders"]
    assert stats["cache_hits"] >= 1 and len(stats["duplicate_drafts"]) == 1

    emu.control("config", {"render_delay_s": [500, 500]})
    try:
        render_id = client.render("s", {**draft, "d": 1500}).json()["data"]["id"]
        canceled = client.http.post(f"/api/render/proxy/lambda/{render_id}/cancel").json()
    finally:
        emu.control("config", {"render_delay_s": [0, 0]})
    assert canceled["data"]["status"] == "failed" and "cancel" in canceled["data"]["error"]


def test_vendor_event_and_render_shapes(tmp_path: Path) -> None:
    proc = start_emulator(tmp_path / "vendor", event_shape="vendor", time_scale=0.01,
                          tokens=[REGISTERED_TOKEN])  # fmt: skip
    try:
        client = NemoTestClient(proc.base_url, token=REGISTERED_TOKEN)
        session_id = client.session()
        events = client.send(session_id, "generate a 1 second video")
        kinds = [e["type"] for e in events]
        assert kinds[0] == "tool_call" and "tool_result" in kinds and kinds[-1] == "text"
        draft = client.state(session_id)["draft"]
        posted = client.render(session_id, draft, "render_vendor").json()
        assert posted["taskId"] == "render_vendor"
        deadline = time.monotonic() + 30
        status = posted
        while status["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.1)
            status = client.http.get("/api/render/proxy/lambda/render_vendor").json()
        assert status["output"]["url"].endswith("/download") and status["output"]["size"] > 0
    finally:
        proc.stop()
