"""Serving an object of an S3-compatible store through the API, whole or by one byte range, as
Starlette's FileResponse does for a file on disk (several ranges at once are answered whole)."""

import re
from urllib.parse import quote

from botocore.exceptions import ClientError
from fastapi import Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from api.errors import ApiError
from core.storage import ObjectMissing, Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def stream_object(
    request: Request, storage: Storage, key: str, media_type: str, filename: str
) -> Response:
    header = request.headers.get("range", "").strip()
    start, end = 0, None
    if header:
        if "," in header and header.startswith("bytes="):
            header = ""  # several ranges: the whole object, which RFC 9110 allows
        elif not (match := _RANGE.match(header)) or match.groups() == ("", ""):
            return PlainTextResponse("Malformed range header.", status_code=400)
        else:
            first, last = match.groups()
            if first:
                start, end = int(first), int(last) if last else None
                if end is not None and end < start:
                    return PlainTextResponse("Malformed range header.", status_code=400)
            elif int(last) == 0:
                return PlainTextResponse("Range Not Satisfiable.", status_code=416)
            else:  # the last N bytes
                start = -int(last)
    try:
        if start < 0:
            first_byte = storage.open(key, 0, 0)
            first_byte.body.close()
            start = max(first_byte.size + start, 0)
        part = storage.open(key, start, end)
    except ObjectMissing:
        raise ApiError(404, "not_found", "the file is missing from storage") from None
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "InvalidRange":
            return PlainTextResponse("Range Not Satisfiable.", status_code=416)
        raise
    headers = {
        "accept-ranges": "bytes",
        "content-length": str(part.length),
        "content-disposition": _disposition(filename),
    }
    status = 200
    if header:
        status = 206
        headers["content-range"] = f"bytes {part.start}-{part.end}/{part.size}"
    return StreamingResponse(
        part.chunks(), status_code=status, media_type=media_type, headers=headers
    )


def _disposition(filename: str) -> str:
    quoted = quote(filename)
    if quoted != filename:
        return f"inline; filename*=utf-8''{quoted}"
    return f'inline; filename="{filename}"'
