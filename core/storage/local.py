"""Objects as files under STORAGE_DIR: a temporary file renamed into place, so a reader never
sees half a file and a crash leaves no partial object under its final name."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.storage.base import (
    InvalidKey,
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

    def _place(self, temporary: Path, key: str) -> None:
        final = self.path_for(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if not final.exists():
            os.replace(temporary, final)
