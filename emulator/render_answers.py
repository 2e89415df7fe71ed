"""What a render status answer looks like: the contract's shapes, and the variants that change
its words, its URL keys, its ids and the lifetime of its signed output URLs."""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

from emulator.renders import RenderJob
from emulator.runtime import Emulator

COMPLETED_WORDS = ("success", "succeeded", "done", "finished", "complete", "COMPLETED", "Done")
FAILED_WORDS = ("failure", "error", "FAILED", "timeout", "Error")
URL_SHAPES = (
    "outputUrl",
    "output_url",
    "output.url",
    "url",
    "downloadUrl",
    "download_url",
    "output",
    "list",
    "none",
)
SIGNED_URL_LIFE_S = 3600


def _stable(emulator: Emulator, *parts: str) -> random.Random:
    """An RNG fixed for one render: the same render always answers in the same words."""
    digest = hashlib.sha256("|".join((str(emulator.config.seed), *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def own_render_id(emulator: Emulator, client_id: str) -> str:
    """The id the backend gives a render itself (status_words variant)."""
    return (
        "lambda_" + hashlib.sha256(f"{emulator.config.seed}|{client_id}".encode()).hexdigest()[:16]
    )


def output_url(job: RenderJob, root: str, emulator: Emulator) -> str | None:
    """The finished video's URL; under expired_urls a signed one, already expired the first
    time for a share of renders."""
    base = job.output_url(root)
    profile = emulator.faults.profile
    if base is None or not profile.serves("expired_urls"):
        return base
    if job.expired_first is None:
        job.expired_first = emulator.faults.chance("expired_url", profile.variant_rate, job.id)
    now = int(time.time())
    if job.expired_first and not job.stale_served:
        job.stale_served = True
        return f"{base}?expires={now - 60}&sig=stale"
    return f"{base}?expires={now + SIGNED_URL_LIFE_S}&sig=fresh"


def status_answer(job: RenderJob, root: str, emulator: Emulator) -> dict[str, Any]:
    url = output_url(job, root, emulator)
    if emulator.faults.profile.serves("status_words"):
        return {"success": True, "data": _worded(job, url, emulator), "error": job.error}
    if emulator.config.event_shape == "vendor":
        answer = job.vendor_shape(root)
        if answer["output"] is not None:
            answer["output"]["url"] = url
        return answer
    data = job.data(root)
    data["outputUrl"] = url
    return {"success": True, "data": data, "error": job.error}


def _worded(job: RenderJob, url: str | None, emulator: Emulator) -> dict[str, Any]:
    rng = _stable(emulator, "status_words", job.id)
    words = {"completed": COMPLETED_WORDS, "failed": FAILED_WORDS}.get(job.status)
    status = (
        rng.choice(words) if words else job.status.upper() if rng.random() < 0.5 else job.status
    )
    data: dict[str, Any] = {"id": job.id, "status": status, "progress": job.progress}
    if job.error:
        data["error"] = job.error
    shape = rng.choice(URL_SHAPES)
    if url is None or shape == "none":
        return data
    if shape == "output.url":
        data["output"] = {"url": url, "duration": job.duration_s()}
    elif shape == "list":
        data["output"] = [url]
    else:
        data[shape] = url
    return data


def refused_download(job: RenderJob, expires: str | None, emulator: Emulator) -> int | None:
    """The HTTP status an expired signed URL answers (0: a 200 HTML page), None when valid."""
    if expires is None:
        return None
    try:
        valid = int(expires) > time.time()
    except ValueError:
        valid = False
    if valid:
        return None
    emulator.stats.renders["expired_url_refused"] += 1
    return _stable(emulator, "expired_answer", job.id).choice((403, 410, 0))
