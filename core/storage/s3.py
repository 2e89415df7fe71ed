"""Objects in an S3-compatible store (AWS S3, SeaweedFS, MinIO, ...) through boto3.

An object becomes visible only when its upload completes (a single PUT, or a multipart upload
on its completion), so writes are atomic; a key already there is not uploaded again, so one
product image shared by many jobs is one object. Keys live under an optional prefix.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from core.storage.base import KEY, ObjectInfo, ObjectMissing, ObjectPart, Storage, check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
TRANSFER = TransferConfig(
    multipart_threshold=64 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024
)


@dataclass(frozen=True)
class S3Location:
    """`s3://bucket/prefix` and how to reach it; the secret never shows in `repr`."""

    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    access_key_id: str | None
    secret_access_key: str | None

    def __repr__(self) -> str:
        return f"S3Location(s3://{self.bucket}/{self.prefix}, endpoint={self.endpoint_url})"


def s3_client(
    location: S3Location,
    endpoint_url: str | None = None,
    *,
    attempts: int = 5,
    timeout_s: float = 60,
) -> S3Client:
    config = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=min(10, timeout_s),
        read_timeout=timeout_s,
        signature_version="s3v4",
    )
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or location.endpoint_url,
        region_name=location.region or "us-east-1",
        aws_access_key_id=location.access_key_id,
        aws_secret_access_key=location.secret_access_key,
        config=config,
    )
    return client


class S3Storage(Storage):
    """Objects in one bucket under one prefix; temporary files in this host's scratch folder."""

    def __init__(
        self, location: S3Location, scratch: Path, public_endpoint_url: str | None = None
    ) -> None:
        super().__init__(scratch)
        self.location = location
        self.client = s3_client(location)
        # Presigned URLs name the host they were signed for: sign for the one clients reach.
        self.signer = (
            s3_client(location, public_endpoint_url) if public_endpoint_url else self.client
        )

    def object_name(self, key: str) -> str:
        prefix = self.location.prefix.strip("/")
        return f"{prefix}/{check_key(key)}" if prefix else check_key(key)

    def exists(self, key: str) -> bool:
        return self._modified(key) is not None

    def _modified(self, key: str) -> datetime | None:
        """When the object was written; None if there is none."""
        try:
            head = self.client.head_object(Bucket=self.location.bucket, Key=self.object_name(key))
        except ClientError as error:
            if _missing(error):
                return None
            raise
        modified: datetime = head["LastModified"]
        return modified

    def open(self, key: str, start: int = 0, end: int | None = None) -> ObjectPart:
        wanted = f"bytes={start}-{'' if end is None else end}"
        arguments: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self.object_name(key)}
        if start or end is not None:
            arguments["Range"] = wanted
        try:
            answer = self.client.get_object(**arguments)
        except ClientError as error:
            if _missing(error):
                raise ObjectMissing(key) from None
            raise
        length = int(answer["ContentLength"])
        content_range = answer.get("ContentRange")  # "bytes 0-9/1234" when a range was asked
        size = int(content_range.rsplit("/", 1)[1]) if content_range else length
        body = cast(BinaryIO, answer["Body"])
        return ObjectPart(size=size, start=start, end=start + length - 1, body=body)

    def presigned_url(self, key: str, expires_s: int) -> str:
        return self.signer.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.location.bucket, "Key": self.object_name(key)},
            ExpiresIn=expires_s,
        )

    def describe(self) -> str:
        where = self.location.endpoint_url or "AWS"
        return f"s3://{self.location.bucket}/{self.location.prefix} at {where}"

    def list_objects(self, area: str) -> Iterator[ObjectInfo]:
        prefix = self.object_name(f"{area}/00/{'0' * 64}").rsplit("/", 2)[0] + "/"
        strip = len(self.location.prefix.strip("/")) + 1 if self.location.prefix.strip("/") else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][strip:]
                if KEY.match(key):
                    yield ObjectInfo(key=key, size=item["Size"], modified=item["LastModified"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.location.bucket, Key=self.object_name(key))

    def _place(self, temporary: Path, key: str) -> None:
        modified = self._modified(key)
        if modified is not None and utcnow() - modified < FRESH:
            return
        # Absent, or written long ago: (re)written, which also makes it recent for the sweep.
        self.client.upload_file(
            str(temporary), self.location.bucket, self.object_name(key), Config=TRANSFER
        )


FRESH = timedelta(hours=1)
"""An object written within this is not written again (retention spares it for longer)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in MISSING_CODES
