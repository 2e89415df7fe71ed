"""Uploads by multipart (streamed to disk) or by URL; typed by content, limited in size."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request

from emulator import media
from emulator.multipart import MalformedUpload, receive_files
from emulator.routes.deps import (
    EmulatorDep,
    EnvelopeError,
    TokenDep,
    base_url,
    check_user_segment,
    gate,
    ok,
    require_session,
)
from emulator.runtime import Emulator

router = APIRouter(dependencies=[Depends(gate)])
URL_REFUSED = 4003


async def _received_from_urls(request: Request, emulator: Emulator) -> list[media.ReceivedFile]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise EnvelopeError(URL_REFUSED, 'Body must be JSON {"urls": [...]}') from exc
    urls = body.get("urls") if isinstance(body, dict) else None
    if not isinstance(urls, list) or not urls:
        raise EnvelopeError(URL_REFUSED, 'Body must be JSON {"urls": [...]} or multipart files')
    received: list[media.ReceivedFile] = []
    config = emulator.config
    try:
        for url in urls:
            received.append(
                await media.fetch(
                    str(url), emulator.tmp_dir, config.max_upload_bytes, config.allow_url_hosts
                )
            )
    except media.UrlRefused as exc:
        for each in received:
            each.discard()
        raise EnvelopeError(URL_REFUSED, f"Could not upload from URL: {exc}") from exc
    return received


@router.post("/api/upload-video/nemo_agent/{user}/{session_id}")
async def upload(
    user: str, session_id: str, request: Request, emulator: EmulatorDep, token: TokenDep
) -> dict[str, Any]:
    check_user_segment(user, token)
    session = require_session(emulator, session_id, token)
    limit = emulator.config.max_upload_bytes
    if request.headers.get("content-type", "").startswith("multipart/"):
        try:
            received = await receive_files(request, emulator.tmp_dir, limit)
        except MalformedUpload as exc:
            raise EnvelopeError(4001, str(exc)) from exc
    else:
        received = await _received_from_urls(request, emulator)
    if not received:
        raise EnvelopeError(4001, "No files in the upload: send multipart `files` parts")
    stored = []
    try:
        for each in received:
            stored.append(await media.store(each, emulator.media_dir))
    except media.TooLarge as exc:
        _discard(received)
        raise EnvelopeError(4002, f"File too large: {exc}; trim or compress it") from exc
    except media.UnsupportedType as exc:
        _discard(received)
        message = f"Unsupported file type ({exc}). Accepted: {media.ACCEPTED_LIST}"
        raise EnvelopeError(4001, message) from exc
    root = base_url(request, emulator)
    infos = []
    for item in stored:
        emulator.store.media[item.media_id] = item
        info = item.info(root)
        session.media.append(item)
        session.video_infos.append(info)
        infos.append(info)
    return ok({"files": infos, "session_state_applied": True}, emulator)


def _discard(received: list[media.ReceivedFile]) -> None:
    for each in received:
        each.discard()
