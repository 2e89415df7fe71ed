"""Asset answers."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AssetUpload(BaseModel):
    """The multipart body of an upload: one part named `file`."""

    file: bytes = Field(description="An image, video or audio file, recognised by its bytes.")


class AssetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: Literal["image", "video", "audio"]
    content_type: str
    size: int
    sha256: str
    filename: str
    created_at: datetime
