"""The storage interface: content-addressed objects under keys `area/xx/<sha256>.<ext>`.

Both backends (local disk, an S3-compatible store) keep the same keys, so a key recorded in
the database means the same object whichever backend wrote it, and no reader ever sees half an
object: the local one renames a finished temporary file into place, S3 makes an object visible
only once its upload completed.
"""

import errno
import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

AREAS = frozenset({"assets", "outputs", "posters", "inputs"})
"""What is kept: uploaded assets, fetched input URLs, rendered videos and their posters."""

KEY = re.compile(r"^(?P<area>[a-z]+)/[0-9a-f]{2}/(?P<sha256>[0-9a-f]{64})(\.[a-z0-9]{1,8})?$")
"""The only keys a backend hands out or serves: no `..`, no absolute path, nothing else."""

CHUNK = 1 << 20

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_SQLSTATE = "53100"


def disk_full(exc: BaseException | None) -> bool:
    """A disk (this host's, or PostgreSQL's) is full, somewhere in the exception's chain."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if getattr(exc, "sqlstate", None) == DISK_FULL_SQLSTATE:
            return True
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)
        seen += 1
    return False


class StorageLimitExceeded(ValueError):
    """The stream was longer than the caller allowed; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the limit of {limit} bytes")
        self.limit = limit


class InvalidKey(ValueError):
    """A key that the store never hands out (a path outside it, a made-up name)."""


class ObjectMissing(LookupError):
    """No object under this key (deleted, or written to another store)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ObjectInfo:
    """An object as a listing shows it (for retention's sweep)."""

    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class ObjectPart:
    """An open object, whole or a byte range of it, read in chunks by `chunks()`."""

    size: int
    """The object's whole size."""
    start: int
    end: int
    """The last byte included."""
    body: BinaryIO

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def chunks(self) -> Iterator[bytes]:
        remaining = self.length
        try:
            while remaining > 0 and (chunk := self.body.read(min(CHUNK, remaining))):
                remaining -= len(chunk)
                yield chunk
        finally:
            self.body.close()


def key_for(area: str, sha256: str, extension: str = "") -> str:
    suffix = f".{extension.lstrip('.')}" if extension else ""
    return f"{area}/{sha256[:2]}/{sha256}{suffix}"


def check_key(key: str) -> str:
    if not KEY.match(key) or key.split("/", 1)[0] not in AREAS:
        raise InvalidKey(f"{key!r} is not a key of the store")
    return key


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Storage(ABC):
    """Content-addressed objects; `scratch` is this host's own folder for temporary files."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = Path(scratch)

    # Writing.

    def save_chunks(
        self,
        area: str,
        chunks: Iterable[bytes],
        extension: str = "",
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Spool chunks to a temporary file, hashing them on the way, then store it."""
        digest = hashlib.sha256()
        size = 0
        temporary = self.temporary_path()
        try:
            with temporary.open("wb") as handle:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise StorageLimitExceeded(max_bytes)
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            key = key_for(area, digest.hexdigest(), extension)
            self._place(temporary, key)
        finally:
            temporary.unlink(missing_ok=True)
        return StoredObject(key=key, sha256=digest.hexdigest(), size=size)

    def adopt(self, area: str, temporary: Path, extension: str = "") -> StoredObject:
        """Store a finished file written elsewhere (a download, ffmpeg's output); it is gone
        from its temporary place afterwards."""
        sha256, size = file_sha256(temporary)
        key = key_for(area, sha256, extension)
        try:
            self._place(temporary, key)
        finally:
            temporary.unlink(missing_ok=True)
        return StoredObject(key=key, sha256=sha256, size=size)

    def adopt_as(self, key: str, temporary: Path) -> None:
        """Store a finished file under a key named by something else (a poster by its video)."""
        try:
            self._place(temporary, check_key(key))
        finally:
            temporary.unlink(missing_ok=True)

    def temporary_path(self, suffix: str = "") -> Path:
        """A fresh path in this host's scratch folder, for tools that write files."""
        directory = self.scratch / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, suffix=suffix)
        os.close(fd)
        return Path(name)

    # Reading.

    def key_of(self, stored: str) -> str:
        """The key of a location recorded in the database; `InvalidKey` if it is none."""
        return check_key(stored)

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def open(self, key: str, start: int = 0, end: int | None = None) -> ObjectPart:
        """The object (or bytes start..end, end included) for reading; `ObjectMissing`."""

    def read_bytes(self, key: str) -> bytes:
        return b"".join(self.open(key).chunks())

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        """A file on this host with the object's bytes, for tools that read files (uploads to
        the backend, ffmpeg); a temporary copy where the object is not on this disk."""
        temporary = self.temporary_path(Path(key).suffix)
        try:
            with temporary.open("wb") as handle:
                for chunk in self.open(key).chunks():
                    handle.write(chunk)
            yield temporary
        finally:
            temporary.unlink(missing_ok=True)

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        """A short-lived URL that reads the object without our API; None where there is none."""
        return None

    def describe(self) -> str:
        """Where the objects are, for logs and the status table (never a secret)."""
        return type(self).__name__

    @abstractmethod
    def list_objects(self, area: str) -> Iterator[ObjectInfo]:
        """Every object of one area (`AREAS`), in no particular order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; nothing if it is not there."""

    @abstractmethod
    def _place(self, temporary: Path, key: str) -> None:
        """Make the finished file the object `key`, atomically; keep an existing one, but mark
        it as written now, so retention's sweep (which spares recently written objects) does
        not take it from under the row about to name it."""
