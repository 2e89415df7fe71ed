"""Fetching a schedule's product feed and the bytes of its media, over HTTP with limits, and
reading the feed (CSV rows or JSON items, the shapes `POST /v1/batches` accepts).

Every request connects only to an address checked after DNS resolution (private and loopback
addresses refused unless `allow_private_urls`), follows at most a few redirects (each checked),
and stops at a size limit and an overall deadline. Failures are `FetchError`s whose message a
user can act on.
"""

import hashlib
import json
import ssl
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import httpx

from core.csv_import import read_csv
from core.errors import InputError, loc_path
from core.intake import Locate
from core.netcheck import PrivateAddress, Unresolvable, pin
from core.settings import Settings

MAX_REDIRECTS = 5


class FetchError(Exception):
    """A URL that could not be read; the message says what happened."""


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: building one (loading the CA bundle) costs ~50 ms of CPU,
    more than a whole pipeline step, and httpx builds one for every client it is not given."""
    return httpx.create_ssl_context()


def _client(settings: Settings) -> httpx.Client:
    timeout = httpx.Timeout(settings.feed_timeout_s, connect=min(10.0, settings.feed_timeout_s))
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": "nemo-batch/0.1"},
        verify=_tls(),
    )


http_client = _client
"""The client `read_url` takes (inputs kept for jobs use it too, worker/inputs.py)."""


def _target(url: httpx.URL, settings: Settings) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL to connect to (the checked address), its Host header and TLS name."""
    if url.scheme not in {"http", "https"} or not url.host:
        raise FetchError(f"{url} is not an http(s) URL")
    try:
        pinned = pin(url, allow_private=settings.allow_private_urls)
    except (PrivateAddress, Unresolvable) as error:
        raise FetchError(str(error)) from None
    return pinned.url, pinned.headers, pinned.extensions


def validator(headers: httpx.Headers) -> str | None:
    """What the server says identifies these bytes (ETag, or Last-Modified with the size),
    so that an unchanged file is known without downloading it; None when it says neither."""
    size = headers.get("content-length", "")
    if etag := headers.get("etag"):
        return f"etag {etag} size {size}"
    if (modified := headers.get("last-modified")) and size.isdigit():
        return f"modified {modified} size {size}"
    return None


def read_url(
    client: httpx.Client,
    url: str,
    settings: Settings,
    limit: int,
    sink: Callable[[bytes], None],
    stop: Callable[[httpx.Headers], bool] = lambda _: False,
) -> str:
    """Stream the body of `url` into `sink` within the byte limit and one overall deadline
    (checked as each piece arrives); returns its content type. When `stop(headers)` is true,
    the body is not read at all."""
    current = httpx.URL(url)
    deadline = time.monotonic() + settings.feed_timeout_s
    try:
        for _ in range(MAX_REDIRECTS + 1):
            target, headers, extensions = _target(current, settings)
            with client.stream("GET", target, headers=headers, extensions=extensions) as response:
                if response.is_redirect and "location" in response.headers:
                    current = current.join(response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise FetchError(f"{url} answered HTTP {response.status_code}")
                if stop(response.headers):
                    return str(response.headers.get("content-type", ""))
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise FetchError(f"{url} is larger than the limit of {limit} bytes")
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise FetchError(f"{url} is larger than the limit of {limit} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(
                            f"{url} took longer than {settings.feed_timeout_s:g} s to download"
                        )
                    sink(chunk)
                return str(response.headers.get("content-type", ""))
        raise FetchError(f"{url} redirects more than {MAX_REDIRECTS} times")
    except httpx.TimeoutException:
        raise FetchError(f"{url} did not answer within {settings.feed_timeout_s:g} s") from None
    except httpx.HTTPError as error:
        raise FetchError(f"{url} could not be reached ({error.__class__.__name__})") from None


def fetch_feed(url: str, settings: Settings) -> tuple[bytes, str]:
    """The feed's bytes and content type (a feed may be as large as a batch request)."""
    body = bytearray()
    with _client(settings) as client:
        content_type = read_url(client, url, settings, settings.max_request_bytes, body.extend)
    return bytes(body), content_type


def hash_urls(urls: Iterable[str], settings: Settings) -> dict[str, str | FetchError]:
    """A fingerprint of each URL's bytes (or why it could not be read), a few at a time: what
    the server says identifies them (`validator`) when it says it, else their sha256."""
    unique = list(dict.fromkeys(urls))
    if not unique:
        return {}

    def digest(client: httpx.Client, url: str) -> str | FetchError:
        hasher = hashlib.sha256()
        said: list[str] = []

        def stop(headers: httpx.Headers) -> bool:
            said.extend(filter(None, [validator(headers)]))
            return bool(said)

        try:
            read_url(client, url, settings, settings.max_upload_bytes, hasher.update, stop)
        except FetchError as error:
            return error
        return said[0] if said else hasher.hexdigest()

    workers = max(1, min(settings.feed_fetch_concurrency, len(unique)))
    with _client(settings) as client, ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda url: digest(client, url), unique)
        return dict(zip(unique, results, strict=True))


def parse_feed(body: bytes, content_type: str) -> tuple[list[Any], Locate]:
    """A feed's products (CSV rows or a JSON list) and how to name a place in it."""
    kind = content_type.split(";", 1)[0].strip().lower()
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if kind.endswith("json") or (not kind.endswith("csv") and start in (b"[", b"{")):
        return _json_items(body), loc_path
    parsed = read_csv(body, lambda _: None)
    return parsed.body["items"], parsed.locate


def _json_items(body: bytes) -> list[Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"the feed is not valid JSON ({error})", code="invalid_feed") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list) or not data:
        raise InputError(
            'a JSON feed is a non-empty list of products, or an object with an "items" list',
            code="invalid_feed",
        )
    return data
