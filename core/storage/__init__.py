"""Storage of assets and outputs: the local disk (`file://`, the default) or an S3-compatible
store (`s3://bucket/prefix`), chosen by STORAGE_URL, behind one interface (`Storage`)."""

from pathlib import Path
from urllib.parse import urlsplit

from core.settings import Settings, get_settings
from core.storage.base import (
    AREAS,
    InvalidKey,
    ObjectInfo,
    ObjectMissing,
    ObjectPart,
    Storage,
    StorageLimitExceeded,
    StoredObject,
    check_key,
    disk_full,
    key_for,
)
from core.storage.local import LocalStorage

__all__ = [
    "AREAS",
    "InvalidKey",
    "LocalStorage",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectPart",
    "Storage",
    "StorageLimitExceeded",
    "StoredObject",
    "check_key",
    "disk_full",
    "key_for",
    "open_storage",
    "storage_for",
]


class StorageUrlInvalid(ValueError):
    """STORAGE_URL names no backend we have."""


def storage_for(settings: Settings) -> Storage:
    """The backend STORAGE_URL names; temporary files always go to this host's STORAGE_DIR."""
    url = settings.storage_url or f"file://{Path(settings.storage_dir).absolute()}"
    parts = urlsplit(url)
    if parts.scheme == "file":  # file:///abs/path, or file://relative/path as written
        where = (parts.netloc if parts.netloc != "localhost" else "") + parts.path
        return LocalStorage(Path(where) if where else settings.storage_dir)
    if parts.scheme == "s3" and parts.netloc:
        from core.storage.s3 import S3Location, S3Storage  # boto3 only where it is used

        location = S3Location(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=settings.aws_endpoint_url,
            region=settings.aws_region,
            access_key_id=settings.aws_access_key_id,
            secret_access_key=settings.aws_secret_access_key,
        )
        return S3Storage(location, settings.storage_dir, settings.storage_public_endpoint_url)
    raise StorageUrlInvalid(
        f"STORAGE_URL must be file:///path or s3://bucket[/prefix], not {parts.scheme}://..."
    )


_opened: dict[tuple[object, ...], Storage] = {}


def open_storage(settings: Settings | None = None) -> Storage:
    """The process's storage for these settings (one S3 client per process and settings)."""
    settings = settings or get_settings()
    key = (
        settings.storage_url,
        str(settings.storage_dir),
        settings.aws_endpoint_url,
        settings.aws_access_key_id,
        settings.storage_public_endpoint_url,
    )
    if key not in _opened:
        _opened[key] = storage_for(settings)
    return _opened[key]
