"""A human summary of a draft (the backend's t/tt/sg/d/m timeline), read without changing it."""

from typing import Any

TRACK_NAMES = {0: "Video", 1: "Audio", 7: "Text"}


def has_segments(draft: dict[str, Any] | None) -> bool:
    """Ready to export: some track has a non-empty segment list."""
    tracks = (draft or {}).get("t") or []
    return any(isinstance(track, dict) and track.get("sg") for track in tracks)


def _label(segment: dict[str, Any]) -> str:
    meta = segment.get("m") if isinstance(segment.get("m"), dict) else {}
    assert isinstance(meta, dict)
    for key in ("text", "title", "name", "source", "url"):
        if meta.get(key):
            return str(meta[key])[:40]
    return "segment"


def summarize(draft: dict[str, Any] | None) -> str:
    """`Timeline (3 tracks): 1. Video: 4 segments (0-15s) 2. Text: "Mug" (0-3s) ...`"""
    tracks = [t for t in (draft or {}).get("t") or [] if isinstance(t, dict)]
    parts: list[str] = []
    for number, track in enumerate(tracks, start=1):
        name = TRACK_NAMES.get(int(track.get("tt", -1)), f"Track type {track.get('tt')}")
        segments = [s for s in track.get("sg") or [] if isinstance(s, dict)]
        total_s = sum(float(s.get("d") or 0) for s in segments) / 1000
        if len(segments) == 1:
            what = f'"{_label(segments[0])}"' if name == "Text" else _label(segments[0])
        else:
            what = f"{len(segments)} segments"
        parts.append(f"{number}. {name}: {what} (0-{total_s:g}s)")
    return f"Timeline ({len(tracks)} tracks): " + " ".join(parts)
