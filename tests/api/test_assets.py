"""POST /v1/assets streams an upload to storage, recognises it by content, and deduplicates."""

import wave
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import UPLOAD_LIMIT, Account, png_bytes, unique_image, upload


def test_an_image_upload_answers_its_facts(client: TestClient, account: Account) -> None:
    content = unique_image()
    answer = upload(client, account, content, name="front.png")
    assert answer.status_code == 201
    body = answer.json()
    assert body["kind"] == "image"
    assert body["content_type"] == "image/png"
    assert body["size"] == len(content)
    assert body["filename"] == "front.png"
    assert len(body["sha256"]) == 64
    assert set(body) == {"id", "kind", "content_type", "size", "sha256", "filename", "created_at"}


def test_the_file_is_kept_in_storage_under_its_hash(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    content = unique_image()
    sha256 = upload(client, account, content).json()["sha256"]
    stored = storage_dir / "assets" / sha256[:2] / f"{sha256}.png"
    assert stored.read_bytes() == content


def test_the_same_bytes_twice_are_the_same_asset(client: TestClient, account: Account) -> None:
    content = unique_image()
    first = upload(client, account, content, name="a.png")
    second = upload(client, account, content, name="b.png")
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


def test_the_same_bytes_for_two_tenants_are_two_assets(
    client: TestClient, account: Account, other_account: Account
) -> None:
    content = unique_image()
    assert (
        upload(client, account, content).json()["id"]
        != upload(client, other_account, content).json()["id"]
    )


def test_the_kind_comes_from_the_content_not_the_name(client: TestClient, account: Account) -> None:
    answer = upload(client, account, png_bytes("#102030", fmt="JPEG"), name="looks-like.png")
    assert answer.status_code == 201
    assert answer.json()["content_type"] == "image/jpeg"


def test_audio_is_an_audio_asset(client: TestClient, account: Account, tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x01\x02" * 800)
    answer = upload(client, account, path.read_bytes(), name="tone.wav")
    assert answer.status_code == 201
    assert answer.json()["kind"] == "audio"


def test_a_text_file_named_png_is_415_with_the_accepted_list(
    client: TestClient, account: Account
) -> None:
    answer = upload(client, account, b"just some text, not an image\n" * 10, name="fake.png")
    assert answer.status_code == 415
    error = answer.json()["error"]
    assert error["code"] == "unsupported_media_type"
    for extension in ("mp4", "mov", "jpg", "png", "webp", "mp3", "wav", "m4a", "aac"):
        assert extension in error["message"]


def test_a_recognised_but_unaccepted_type_is_415(client: TestClient, account: Account) -> None:
    answer = upload(client, account, b"%PDF-1.4\n" + b"0" * 200, name="doc.pdf")
    assert answer.status_code == 415
    assert "application/pdf" in answer.json()["error"]["message"]


def test_a_file_over_the_limit_is_413_and_nothing_is_kept(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    big = png_bytes("#abcdef") + b"\0" * (UPLOAD_LIMIT + 1)
    answer = upload(client, account, big)
    assert answer.status_code == 413
    assert str(UPLOAD_LIMIT) in answer.json()["error"]["message"]
    assert not any((storage_dir / "tmp").iterdir())


def test_an_empty_file_is_422(client: TestClient, account: Account) -> None:
    answer = upload(client, account, b"")
    assert answer.status_code == 422


def test_a_body_without_a_file_part_is_422(client: TestClient, account: Account) -> None:
    answer = client.post(
        "/v1/assets",
        headers=account.headers,
        data={"other": "value"},
        files={"attachment": ("a.png", unique_image())},
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == "file"


def test_a_body_that_is_not_multipart_is_415(client: TestClient, account: Account) -> None:
    answer = client.post("/v1/assets", headers=account.headers, content=unique_image())
    assert answer.status_code == 415


def test_a_truncated_multipart_body_is_400(client: TestClient, account: Account) -> None:
    headers = {**account.headers, "Content-Type": "multipart/form-data; boundary=XyZ"}
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    answer = client.post("/v1/assets", headers=headers, content=body + unique_image())
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_multipart"


def test_an_asset_can_be_read_back(client: TestClient, account: Account) -> None:
    created = upload(client, account, unique_image()).json()
    answer = client.get(f"/v1/assets/{created['id']}", headers=account.headers)
    assert answer.status_code == 200
    assert answer.json() == created


def test_another_tenants_asset_is_404(
    client: TestClient, account: Account, other_account: Account
) -> None:
    created = upload(client, account, unique_image()).json()
    answer = client.get(f"/v1/assets/{created['id']}", headers=other_account.headers)
    assert answer.status_code == 404
