"""The content-addressed store: atomic writes, hashes, limits, and its boundary."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.storage import Storage, StorageLimitExceeded


def test_chunks_are_stored_under_their_sha256(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    stored = storage.save_chunks("assets", [b"hello ", b"world"], "txt")
    digest = hashlib.sha256(b"hello world").hexdigest()
    assert stored.sha256 == digest
    assert stored.size == 11
    assert stored.path == tmp_path / "assets" / digest[:2] / f"{digest}.txt"
    assert stored.path.read_bytes() == b"hello world"


def test_the_same_content_twice_is_one_file(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    first = storage.save_chunks("assets", [b"same"], "bin")
    second = storage.save_chunks("assets", [b"sa", b"me"], "bin")
    assert first.path == second.path
    assert list((tmp_path / "assets" / "tmp").iterdir()) == []


def test_a_stream_over_the_limit_keeps_nothing(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    with pytest.raises(StorageLimitExceeded):
        storage.save_chunks("assets", [b"x" * 6, b"x" * 6], "bin", max_bytes=10)
    assert list((tmp_path / "assets" / "tmp").iterdir()) == []
    assert [path for path in (tmp_path / "assets").rglob("*") if path.is_file()] == []


def test_a_failing_stream_leaves_no_temporary_file(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        Storage(tmp_path).save_chunks("assets", chunks(), "bin")
    assert list((tmp_path / "assets" / "tmp").iterdir()) == []


def test_adopt_moves_a_finished_file_into_the_store(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    temporary = storage.temporary_path("outputs", ".mp4")
    temporary.write_bytes(b"video")
    stored = storage.adopt("outputs", temporary, "mp4")
    assert stored.path.read_bytes() == b"video"
    assert not temporary.exists()


def test_contains_refuses_paths_outside_the_root(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "store")
    inside = tmp_path / "store" / "outputs" / "a.mp4"
    assert storage.contains(inside)
    assert not storage.contains(tmp_path / "elsewhere.mp4")
    assert not storage.contains(tmp_path / "store" / ".." / "escape.mp4")
    assert not storage.contains(Path("/etc/passwd"))


def test_contains_follows_symlinks_out_of_the_root(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "store")
    (tmp_path / "store").mkdir()
    (tmp_path / "secret").write_text("x")
    link = tmp_path / "store" / "link"
    link.symlink_to(tmp_path / "secret")
    assert not storage.contains(link)
