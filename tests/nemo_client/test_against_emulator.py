"""The client drives a whole session against the emulator over real HTTP, in both event shapes.

The emulator is a second, independent reading of nemo-api.md: agreeing with it checks both.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.support.emulator_proc import EmulatorProcess, start_emulator
from worker.nemo import (
    ClientIdMissing,
    NemoClient,
    OutOfCredits,
    RenderIdConflict,
    RenderNotFound,
    RenderStatus,
    SessionLost,
    TokenInvalid,
    TurnEvent,
)

REGISTERED_TOKEN = "nmv_usr_registered_client_suite"
RENDER_DEADLINE_S = 120.0


@pytest.fixture(scope="module", params=["adk", "vendor"])
def emulator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorProcess]:
    proc = start_emulator(
        tmp_path_factory.mktemp(f"emu-{request.param}"),
        profile="ideal",
        time_scale=0.01,
        tokens=[REGISTERED_TOKEN],
        render_scale=0.25,
        event_shape=request.param,
    )
    yield proc
    proc.stop()


@pytest.fixture()
def client(emulator: EmulatorProcess) -> Iterator[NemoClient]:
    emulator.control("reset")
    with NemoClient(emulator.base_url, timeout=30.0) as nemo:
        yield nemo


def _image(path: Path) -> Path:
    Image.new("RGB", (640, 480), (200, 40, 40)).save(path, format="PNG")
    return path


def _wait_for_render(client: NemoClient, render_id: str) -> RenderStatus:
    deadline = time.monotonic() + RENDER_DEADLINE_S
    while time.monotonic() < deadline:
        status = client.render_status(render_id)
        if status.is_final:
            return status
        time.sleep(0.2)
    raise AssertionError(f"render {render_id} not final within {RENDER_DEADLINE_S} s")


def test_a_whole_session_from_anonymous_token_to_downloaded_mp4(
    client: NemoClient, tmp_path: Path
) -> None:
    token = client.anonymous_token(str(uuid.uuid4()))
    assert token.token.startswith("nmv_") and token.user_id
    assert token.credits == 100
    client.token = token.token

    session = client.create_session(language="en")
    assert session.session_id.isdigit()
    media = client.upload_files(session.session_id, [_image(tmp_path / "product.png")])
    assert [item.file_type for item in media] == ["image"]
    assert media[0].width == 640 and media[0].cdn_url

    before = client.session_state(session.session_id)
    seen: list[TurnEvent] = []
    turn = client.send_message(
        session.session_id, "generate a 2-second video", deadline_s=120, on_event=seen.append
    )
    assert not turn.cut and not turn.deadline_hit and turn.error is None
    assert turn.has_text
    assert turn.tool_calls, "a generation runs at least one tool"
    assert seen

    after = client.session_state(session.session_id)
    assert after.draft_hash != before.draft_hash or after.media_count > before.media_count
    assert after.has_timeline
    assert client.credits().available < 100

    render_id = f"render_{uuid.uuid4().hex}"
    posted = client.export(render_id, session.session_id, after.draft)
    assert posted.id == render_id and not posted.is_final
    status = _wait_for_render(client, render_id)
    assert status.succeeded, status.error
    assert status.output_url

    output = tmp_path / "out.mp4"
    size = client.download(status.output_url, output)
    assert size == output.stat().st_size > 1000
    assert output.read_bytes()[4:8] == b"ftyp"
    again = tmp_path / "again.mp4"
    assert client.download(client.render_download_url(render_id), again) > 1000


def test_the_emulators_refusals_arrive_as_typed_errors(
    client: NemoClient, emulator: EmulatorProcess
) -> None:
    with pytest.raises(ClientIdMissing):
        client.anonymous_token("")
    client.token = "nmv_usr_not_a_real_token"
    with pytest.raises(TokenInvalid) as invalid:
        client.credits()
    assert "nmv_usr_not_a_real_token" not in repr(invalid.value)

    client.token = REGISTERED_TOKEN
    session = client.create_session()
    emulator.control(f"lose-session/{session.session_id}")
    with pytest.raises(SessionLost):
        client.send_message(session.session_id, "hello")
    with pytest.raises(SessionLost):
        client.session_state(session.session_id)

    session = client.create_session()
    draft = {"t": [{"tt": 0, "sg": [{"s": 0, "d": 1000, "m": {}}]}]}
    client.export("render_used_once", session.session_id, draft)
    with pytest.raises(RenderIdConflict):
        client.export("render_used_once", session.session_id, draft)
    with pytest.raises(RenderNotFound):
        client.render_status("render_never_posted")


def test_out_of_credits_after_the_anonymous_generation_carries_the_bind_link(
    client: NemoClient, tmp_path: Path
) -> None:
    token = client.anonymous_token(str(uuid.uuid4()))
    client.token = token.token
    session = client.create_session()
    client.upload_files(session.session_id, [_image(tmp_path / "a.png")])
    client.send_message(session.session_id, "generate a 2-second video", deadline_s=120)
    with pytest.raises(OutOfCredits) as raised:
        client.send_message(session.session_id, "make it 16:9", deadline_s=120)
    assert raised.value.bind_url == f"https://nemovideo.com/register?bind={token.user_id}"
    assert token.token not in str(raised.value)
