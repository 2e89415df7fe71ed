"""The draft timeline (t/tt/sg/d/m) the agent builds and edits and the renderer reads.

Shape: ``{"v": 1, "ar": "9:16", "w": 1080, "h": 1920, "d": <ms>, "title": ..., "t": [tracks]}``;
a track is ``{"tt": 0|1|7, "sg": [segments]}``; a segment ``{"s": <start ms>, "d": <ms>, "m": {}}``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

VIDEO, AUDIO, TEXT = 0, 1, 7
ASPECTS: dict[str, tuple[int, int]] = {
    "9:16": (1080, 1920),
    "16:9": (1920, 1080),
    "1:1": (1080, 1080),
}
PLACEHOLDER_COLORS = ("#2f4858", "#33658a", "#86bbd8", "#f6ae2d", "#f26419")
TITLE_MS = 3000
MUSIC_VOLUME = 0.35

Draft = dict[str, Any]


def canvas_config(aspect: str) -> dict[str, Any]:
    width, height = ASPECTS[aspect]
    return {"aspect_ratio": aspect, "width": width, "height": height}


def draft_hash(draft: Draft) -> str:
    canonical = json.dumps(draft, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def has_segments(draft: Any) -> bool:
    """Ready to export: some track has a non-empty `sg`."""
    if not isinstance(draft, dict) or not isinstance(draft.get("t"), list):
        return False
    return any(isinstance(track, dict) and track.get("sg") for track in draft["t"])


def track(draft: Draft, kind: int) -> dict[str, Any]:
    for existing in draft["t"]:
        if existing.get("tt") == kind:
            return existing
    created: dict[str, Any] = {"tt": kind, "sg": []}
    draft["t"].append(created)
    return created


def _split(total_ms: int, parts: int) -> list[int]:
    base = total_ms // parts
    sizes = [base] * parts
    sizes[-1] += total_ms - base * parts
    return sizes


def _visual_segments(visuals: list[dict[str, Any]], total_ms: int) -> list[dict[str, Any]]:
    sources: list[dict[str, Any]] = [
        {
            "type": info["file_type"],
            "title": info["filename"],
            "media_id": info["media_id"],
            "src": info["cdn_url"],
            "width": info["width"],
            "height": info["height"],
        }
        for info in visuals
    ] or [{"type": "color", "title": "background", "color": PLACEHOLDER_COLORS[0]}]
    segments, start = [], 0
    for meta, duration in zip(sources, _split(total_ms, len(sources)), strict=True):
        segments.append({"s": start, "d": duration, "m": meta})
        start += duration
    return segments


def _text_segment(text: str, start_ms: int, end_ms: int, role: str, position: str) -> dict:
    return {
        "s": start_ms,
        "d": max(1, end_ms - start_ms),
        "m": {"type": "text", "text": text, "role": role, "position": position},
    }


def music_segment(total_ms: int, music: dict[str, Any] | None) -> dict[str, Any]:
    if music is None:
        meta: dict[str, Any] = {"type": "generated", "title": "Generated music bed", "tone_hz": 220}
    else:
        meta = {
            "type": "music",
            "title": music["filename"],
            "media_id": music["media_id"],
            "src": music["cdn_url"],
        }
    meta["volume"] = MUSIC_VOLUME
    return {"s": 0, "d": total_ms, "m": meta}


def build_draft(
    *,
    visuals: list[dict[str, Any]],
    music: dict[str, Any] | None,
    duration_s: float,
    aspect: str,
    title: str,
    captions: list[str],
) -> Draft:
    """A fresh draft: visuals filling the duration, title then captions, music or a bed."""
    total = max(1000, round(duration_s * 1000))
    width, height = ASPECTS[aspect]
    texts = [_text_segment(title, 0, min(TITLE_MS, total), "title", "top")]
    if captions and total > TITLE_MS:
        slots = _split(total - TITLE_MS, len(captions))
        start = TITLE_MS
        for caption, slot in zip(captions, slots, strict=True):
            texts.append(_text_segment(caption, start, start + slot, "caption", "bottom"))
            start += slot
    return {
        "v": 1,
        "ar": aspect,
        "w": width,
        "h": height,
        "d": total,
        "title": title,
        "t": [
            {"tt": VIDEO, "sg": _visual_segments(visuals, total)},
            {"tt": TEXT, "sg": texts},
            {"tt": AUDIO, "sg": [music_segment(total, music)]},
        ],
    }


def with_aspect(draft: Draft, aspect: str) -> Draft:
    edited = copy.deepcopy(draft)
    edited["ar"] = aspect
    edited["w"], edited["h"] = ASPECTS[aspect]
    return edited


def with_duration(draft: Draft, duration_s: float) -> Draft:
    """Every segment stretched or shrunk in proportion to the new length."""
    edited = copy.deepcopy(draft)
    old, new = int(edited["d"]), max(1000, round(duration_s * 1000))
    for each in edited["t"]:
        for segment in each["sg"]:
            segment["s"] = round(segment["s"] * new / old)
            segment["d"] = max(1, round(segment["d"] * new / old))
        if each["tt"] == VIDEO and each["sg"]:
            last = each["sg"][-1]
            last["d"] = new - last["s"]
    edited["d"] = new
    return edited


def with_text(draft: Draft, text: str, start_s: float | None, end_s: float | None) -> Draft:
    """An overlay from start to end (the whole video by default), clamped to the video."""
    edited = copy.deepcopy(draft)
    total = int(edited["d"])
    start = 0 if start_s is None else min(total - 1, max(0, round(start_s * 1000)))
    end = total if end_s is None else min(total, max(start + 1, round(end_s * 1000)))
    track(edited, TEXT)["sg"].append(_text_segment(text, start, end, "overlay", "center"))
    return edited


def with_music(draft: Draft, music: dict[str, Any] | None) -> Draft:
    edited = copy.deepcopy(draft)
    track(edited, AUDIO)["sg"] = [music_segment(int(edited["d"]), music)]
    return edited


def without_music(draft: Draft) -> Draft:
    edited = copy.deepcopy(draft)
    edited["t"] = [each for each in edited["t"] if each.get("tt") != AUDIO]
    return edited
