"""The nemo-batch API as seen from the command line: one `ApiClient` and one error type.

Every answer that is not a success becomes an `ApiClientError` carrying the API's own
`{"error": {"code", "message", "details"}}`, so commands can print what went wrong and what to do.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

DEFAULT_TIMEOUT_S = 30.0
CHUNK_BYTES = 256 * 1024


class ApiClientError(Exception):
    """The API refused a request, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        head = f"HTTP {self.status} {self.code}: " if self.status else ""
        return head + self.message


def _error_from(response: httpx.Response) -> ApiClientError:
    """The API's error body as an exception; a body of another shape is quoted as it is."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return ApiClientError(str(error["message"]), response.status_code, error.get("code"))
    text = response.text.strip()[:300] or response.reason_phrase
    return ApiClientError(text, response.status_code, "http_error")


class ApiClient:
    """A thin, synchronous client of /v1 (batches, jobs, assets) with the tenant's API key."""

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float = DEFAULT_TIMEOUT_S):
        headers = {"User-Agent": "nemo-batch-cli"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ApiClientError(
                f"cannot reach the API at {self.base_url} ({error}); is `nemo-batch api` "
                "running, and is --api-url (NEMO_BATCH_API_URL) right?"
            ) from error
        if response.is_error:
            raise _error_from(response)
        return response.json()

    # Assets and batches.

    def upload_asset(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as file:
            result: dict[str, Any] = self._request(
                "POST", "/v1/assets", files={"file": (path.name, file)}
            )
        return result

    def create_batch_csv(
        self, body: bytes, params: dict[str, str], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Content-Type": "text/csv"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        result: dict[str, Any] = self._request(
            "POST", "/v1/batches", content=body, params=params, headers=headers
        )
        return result

    def create_batch_json(
        self, body: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self._request("POST", "/v1/batches", json=body, headers=headers)
        return result

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/batches/{batch_id}")
        return result

    def list_batches(self) -> Iterator[dict[str, Any]]:
        yield from self._pages("/v1/batches")

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/v1/batches/{batch_id}/cancel")
        return result

    def list_jobs(self, batch_id: str) -> Iterator[dict[str, Any]]:
        yield from self._pages(f"/v1/batches/{batch_id}/jobs")

    def get_job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/jobs/{job_id}")
        return result

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = self._request("GET", path, params=params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # Downloads.

    def download(self, url: str, destination: Path, expected_size: int | None = None) -> int:
        """Stream `url` to `destination` through a temporary file renamed into place.

        A complete file already there (same size as announced) is kept; a partial temporary
        file from an interrupted run is resumed with a Range request. Returns the file's size.
        """
        if destination.is_file() and expected_size and destination.stat().st_size == expected_size:
            return expected_size
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.part")
        have = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code == 416:  # the partial file is already whole
                    response.read()
                elif response.is_error:
                    response.read()
                    raise _error_from(response)
                else:
                    mode = "ab" if response.status_code == 206 else "wb"
                    with partial.open(mode) as file:
                        for chunk in response.iter_bytes(CHUNK_BYTES):
                            file.write(chunk)
        except httpx.HTTPError as error:
            raise ApiClientError(
                f"the download of {url} broke off ({error}); run the command again to resume"
            ) from error
        size = partial.stat().st_size
        if expected_size is not None and size != expected_size:
            partial.unlink(missing_ok=True)
            raise ApiClientError(
                f"{destination.name}: got {size} bytes, expected {expected_size}; run again"
            )
        os.replace(partial, destination)
        return size


def new_idempotency_key() -> str:
    return uuid.uuid4().hex
