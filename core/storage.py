"""Assets and outputs on local disk under STORAGE_DIR, content-addressed by sha256.

Every write goes to a temporary file in the target directory and is renamed into place, so a
reader never sees half a file and a crash leaves no partial object under its final name.
"""

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


class StorageLimitExceeded(ValueError):
    """The stream was longer than the caller allowed; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StoredObject:
    path: Path
    sha256: str
    size: int


class Storage:
    """A content-addressed object store rooted at one directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, area: str, sha256: str, extension: str) -> Path:
        suffix = f".{extension.lstrip('.')}" if extension else ""
        return self.root / area / sha256[:2] / f"{sha256}{suffix}"

    @contextmanager
    def _temporary(self, area: str) -> Iterator[tuple[BinaryIO, Path]]:
        directory = self.root / area / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle, path
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def save_chunks(
        self,
        area: str,
        chunks: Iterable[bytes],
        extension: str = "",
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Write chunks to a temporary file, hash them on the way, rename into place."""
        digest = hashlib.sha256()
        size = 0
        with self._temporary(area) as (handle, temporary):
            for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise StorageLimitExceeded(max_bytes)
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        return self._place(area, temporary, digest.hexdigest(), size, extension)

    def adopt(self, area: str, temporary: Path, extension: str = "") -> StoredObject:
        """Move a finished temporary file (written elsewhere) into the store."""
        digest = hashlib.sha256()
        size = 0
        with temporary.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return self._place(area, temporary, digest.hexdigest(), size, extension)

    def _place(
        self, area: str, temporary: Path, sha256: str, size: int, extension: str
    ) -> StoredObject:
        final = self.path_for(area, sha256, extension)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            temporary.unlink(missing_ok=True)
        else:
            os.replace(temporary, final)
        return StoredObject(path=final, sha256=sha256, size=size)

    def temporary_path(self, area: str, suffix: str = "") -> Path:
        """A fresh path inside the store's temporary directory, for tools that write files."""
        directory = self.root / area / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, suffix=suffix)
        os.close(fd)
        return Path(name)

    def contains(self, path: Path) -> bool:
        """True when `path` resolves inside the store (never serve files outside it)."""
        try:
            Path(path).resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        return True
