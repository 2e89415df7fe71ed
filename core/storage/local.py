"""Objects as files under STORAGE_DIR: a temporary file renamed into place, so a reader never
sees half a file and a crash leaves no partial object under its final name."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from core.storage.base import (
    KEY,
    InvalidKey,
    ObjectInfo,
    ObjectMissing,
    ObjectPart,
    Storage,
    check_key,
)


class LocalStorage(Storage):
    """The objects of one host's disk, rooted at one directory (also its scratch folder)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        return self.root / check_key(key)

    def key_of(self, stored: str) -> str:
        """The key of a recorded location: a key, or (as older jobs recorded) an absolute path
        inside the root; anything resolving outside it is refused."""
        path = Path(stored)
        if not path.is_absolute():
            return check_key(stored)
        try:
            relative = path.resolve().relative_to(self.root.resolve())
        except ValueError:
            raise InvalidKey(f"{stored!r} is outside the store") from None
        return check_key(relative.as_posix())

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def open(self, key: str, start: int = 0, end: int | None = None) -> ObjectPart:
        path = self.path_for(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        size = os.fstat(handle.fileno()).st_size
        handle.seek(start)
        last = size - 1 if end is None else min(end, size - 1)
        return ObjectPart(size=size, start=start, end=last, body=handle)

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        path = self.path_for(key)
        if not path.is_file():
            raise ObjectMissing(key)
        yield path

    def describe(self) -> str:
        return f"file://{self.root.absolute()}"

    def list_objects(self, area: str) -> Iterator[ObjectInfo]:
        base = self.root / area
        if not base.is_dir():
            return
        for path in base.glob("*/*"):
            key = path.relative_to(self.root).as_posix()
            if not KEY.match(key):
                continue  # not an object of ours (a stray file): never touched
            try:
                facts = path.stat()
            except FileNotFoundError:
                continue
            modified = datetime.fromtimestamp(facts.st_mtime, UTC)
            yield ObjectInfo(key=key, size=facts.st_size, modified=modified)

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def _place(self, temporary: Path, key: str) -> None:
        final = self.path_for(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            try:
                os.utime(final)
                return
            except FileNotFoundError:
                pass  # deleted a moment ago: placed again below
        os.replace(temporary, final)
