"""The storage contract, run against both backends: the local disk and a real S3-compatible
store (SeaweedFS): content addressing, atomic writes, limits, reads by range, and the keys it
refuses."""

import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.embedded.s3_server import EmbeddedS3
from core.settings import Settings
from core.storage import (
    InvalidKey,
    LocalStorage,
    ObjectMissing,
    Storage,
    StorageLimitExceeded,
    key_for,
    storage_for,
)


def _scratch_files(storage: Storage) -> list[Path]:
    return [path for path in (storage.scratch / "tmp").glob("*") if path.is_file()]


def test_chunks_are_stored_under_their_sha256(storage: Storage) -> None:
    stored = storage.save_chunks("assets", [b"hello ", b"world"], "txt")
    digest = hashlib.sha256(b"hello world").hexdigest()
    assert stored.sha256 == digest
    assert stored.size == 11
    assert stored.key == f"assets/{digest[:2]}/{digest}.txt"
    assert storage.read_bytes(stored.key) == b"hello world"
    assert storage.exists(stored.key)


def test_the_same_content_twice_is_one_object(storage: Storage) -> None:
    first = storage.save_chunks("assets", [b"same"], "bin")
    second = storage.save_chunks("assets", [b"sa", b"me"], "bin")
    assert first.key == second.key
    assert _scratch_files(storage) == []


def test_a_stream_over_the_limit_keeps_nothing(storage: Storage) -> None:
    with pytest.raises(StorageLimitExceeded):
        storage.save_chunks("assets", [b"x" * 6, b"x" * 6], "bin", max_bytes=10)
    assert _scratch_files(storage) == []
    assert not storage.exists(key_for("assets", hashlib.sha256(b"x" * 12).hexdigest(), "bin"))


def test_a_failing_stream_leaves_no_temporary_file(storage: Storage) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        storage.save_chunks("assets", chunks(), "bin")
    assert _scratch_files(storage) == []
    assert not storage.exists(key_for("assets", hashlib.sha256(b"partial").hexdigest(), "bin"))


def test_adopt_moves_a_finished_file_into_the_store(storage: Storage) -> None:
    temporary = storage.temporary_path(".mp4")
    temporary.write_bytes(b"video")
    stored = storage.adopt("outputs", temporary, "mp4")
    assert storage.read_bytes(stored.key) == b"video"
    assert not temporary.exists()


def test_adopt_as_names_an_object_after_another(storage: Storage) -> None:
    video = storage.save_chunks("outputs", [b"the video"], "mp4")
    poster = storage.temporary_path(".jpg")
    poster.write_bytes(b"the poster")
    storage.adopt_as(key_for("posters", video.sha256, "jpg"), poster)
    assert storage.read_bytes(key_for("posters", video.sha256, "jpg")) == b"the poster"
    assert not poster.exists()


def test_an_object_reads_whole_or_by_range(storage: Storage) -> None:
    stored = storage.save_chunks("outputs", [bytes(range(256)) * 4], "mp4")
    part = storage.open(stored.key, 10, 19)
    assert (part.size, part.start, part.end, part.length) == (1024, 10, 19, 10)
    assert b"".join(part.chunks()) == bytes(range(10, 20))
    tail = storage.open(stored.key, 1000)
    assert b"".join(tail.chunks()) == (bytes(range(256)) * 4)[1000:]


def test_a_local_file_holds_the_objects_bytes_for_tools(storage: Storage) -> None:
    stored = storage.save_chunks("assets", [b"\xff\xd8\xff picture"], "jpg")
    with storage.local_file(stored.key) as path:
        assert path.read_bytes() == b"\xff\xd8\xff picture"
        assert path.suffix == ".jpg"
    if not isinstance(storage, LocalStorage):
        assert not path.exists(), "the temporary copy is removed"


def test_a_missing_object_is_missing_not_an_error(storage: Storage) -> None:
    key = key_for("outputs", "0" * 64, "mp4")
    assert not storage.exists(key)
    with pytest.raises(ObjectMissing):
        storage.open(key)
    with pytest.raises(ObjectMissing), storage.local_file(key):
        pass
    assert _scratch_files(storage) == []


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "/etc/passwd",
        "assets/../../secret",
        "assets/ab/not-a-hash.jpg",
        "elsewhere/ab/" + "ab" * 32,
        "assets/ab/" + "ab" * 32 + "/../x",
    ],
)
def test_keys_the_store_never_hands_out_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.exists(storage.key_of(key))


def test_a_reader_never_sees_half_an_object(storage: Storage) -> None:
    """While a large object is being written, readers find it absent or whole."""
    body = os.urandom(3 * 1024 * 1024)
    key = key_for("outputs", hashlib.sha256(body).hexdigest(), "mp4")
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(len(storage.read_bytes(key)))
            except ObjectMissing:
                seen.append(0)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        storage.save_chunks("outputs", [body[i : i + 65536] for i in range(0, len(body), 65536)])
        storage.save_chunks("outputs", [body], "mp4")
    finally:
        done.set()
        reader.join()
    assert set(seen) <= {0, len(body)}
    assert storage.read_bytes(key) == body


def test_local_storage_reads_absolute_paths_only_inside_its_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    stored = storage.save_chunks("outputs", [b"v"], "mp4")
    assert storage.key_of(str(storage.root / stored.key)) == stored.key
    with pytest.raises(InvalidKey):
        storage.key_of(str(tmp_path / "elsewhere.mp4"))


def test_local_storage_refuses_symlinks_out_of_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    (tmp_path / "secret").write_text("x")
    digest = "ab" * 32
    link = tmp_path / "store" / "outputs" / "ab" / f"{digest}.mp4"
    link.parent.mkdir(parents=True)
    link.symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidKey):
        storage.key_of(str(link))


def test_s3_presigned_urls_read_the_object_for_a_while(s3_environment: dict[str, str]) -> None:
    settings = Settings(
        storage_dir=Path("/nonexistent"),
        storage_url=s3_environment["STORAGE_URL"],
        aws_endpoint_url=s3_environment["AWS_ENDPOINT_URL"],
        aws_access_key_id=s3_environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_environment["AWS_SECRET_ACCESS_KEY"],
    )
    storage = storage_for(settings)
    stored = storage.save_chunks("outputs", [b"presigned " + uuid.uuid4().bytes], "mp4")
    url = storage.presigned_url(stored.key, 60)
    assert url is not None and s3_environment["AWS_SECRET_ACCESS_KEY"] not in url
    assert httpx.get(url).content == storage.read_bytes(stored.key)
    forged = url.replace("Signature=", "Signature=0")
    assert httpx.get(forged).status_code == 403
    assert httpx.get(url.split("?")[0]).status_code == 403, "the bucket is not public"


def test_s3_storage_with_wrong_credentials_fails_without_showing_them(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    environment = s3_server.environment()
    secret = "wrong-" + uuid.uuid4().hex
    settings = Settings(
        storage_dir=tmp_path,
        storage_url=environment["STORAGE_URL"],
        aws_endpoint_url=environment["AWS_ENDPOINT_URL"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret,
    )
    storage = storage_for(settings)
    with pytest.raises(Exception) as raised:
        storage.save_chunks("assets", [b"x"], "bin")
    assert secret not in str(raised.value) and secret not in repr(storage.describe())
    assert secret not in repr(settings)


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("", Path("host").absolute()),
        ("file:///srv/objects", Path("/srv/objects")),
        ("file://var/objects", Path("var/objects")),
    ],
)
def test_storage_url_names_the_local_folder(url: str, root: Path) -> None:
    storage = storage_for(Settings(storage_dir=Path("host"), storage_url=url))
    assert isinstance(storage, LocalStorage) and storage.root == root


def test_a_storage_url_of_no_backend_is_refused_saying_what_is_accepted() -> None:
    with pytest.raises(ValueError, match=r"file:///path or s3://bucket"):
        storage_for(Settings(storage_url="ftp://example/objects"))
