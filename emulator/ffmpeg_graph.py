"""The ffmpeg command that turns a draft into an H.264/AAC MP4 of the draft's exact length."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.draft import ASPECTS, AUDIO, TEXT, VIDEO
from emulator.textimage import text_png

FPS = 25
ZOOM_PER_SEGMENT = 0.12
TEXT_Y = {"top": "H*0.08", "center": "(H-h)/2", "bottom": "H*0.78-h/2"}
MediaResolver = Callable[[dict[str, Any]], Path | None]


def even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def frame_size(draft: dict[str, Any], scale: float) -> tuple[int, int]:
    width, height = ASPECTS.get(str(draft.get("ar")), (0, 0))
    if not width:
        width, height = int(draft.get("w") or 1080), int(draft.get("h") or 1920)
    return even(width * scale), even(height * scale)


def total_ms(draft: dict[str, Any]) -> int:
    if draft.get("d"):
        return int(draft["d"])
    ends = [int(s.get("s", 0)) + int(s.get("d", 0)) for t in draft["t"] for s in t.get("sg", [])]
    return max(ends or [1000])


def _segments(draft: dict[str, Any], kind: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for each in draft.get("t", []):
        if each.get("tt") == kind:
            found.extend(s for s in each.get("sg", []) if int(s.get("d", 0)) > 0)
    return found


@dataclass
class _Graph:
    inputs: list[str] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    count: int = 0

    def add_input(self, *args: str) -> int:
        self.inputs += args
        self.count += 1
        return self.count - 1


def _video(
    graph: _Graph, draft: dict[str, Any], size: tuple[int, int], resolve: MediaResolver
) -> str:
    width, height = size
    fit = (
        f"scale={width}:{height}:force_original_aspect_ratio=increase:out_range=tv,"
        f"crop={width}:{height},setsar=1"
    )
    labels, start_frame, cursor_ms = [], 0, 0
    for index, segment in enumerate(_segments(draft, VIDEO)):
        cursor_ms += int(segment["d"])
        end_frame = round(cursor_ms * FPS / 1000)
        frames = max(1, end_frame - start_frame)
        start_frame += frames
        meta, seconds = segment.get("m", {}), frames / FPS
        path = resolve(meta)
        if path is not None and meta.get("type") == "video":
            k = graph.add_input("-stream_loop", "-1", "-t", f"{seconds + 1:.3f}", "-i", str(path))
            chain = f"[{k}:v]fps={FPS},{fit}"
        elif path is not None:
            k = graph.add_input("-i", str(path))
            zoom = f"1+{ZOOM_PER_SEGMENT}*on/{frames}"
            chain = (
                f"[{k}:v]{fit},zoompan=z='{zoom}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
                f":d={frames}:s={width}x{height}:fps={FPS}"
            )
        else:
            color = str(meta.get("color", "#33658a")).replace("#", "0x")
            source = f"color=c={color}:s={width}x{height}:r={FPS}:d={seconds + 1:.3f}"
            k = graph.add_input("-f", "lavfi", "-i", source)
            chain = f"[{k}:v]setsar=1"
        graph.filters.append(
            f"{chain},format=yuv420p,trim=end_frame={frames},setpts=PTS-STARTPTS[v{index}]"
        )
        labels.append(f"[v{index}]")
    if not labels:
        k = graph.add_input("-f", "lavfi", "-i", f"color=c=black:s={width}x{height}:r={FPS}")
        graph.filters.append(f"[{k}:v]format=yuv420p[v0]")
        labels = ["[v0]"]
    total_frames = round(total_ms(draft) * FPS / 1000)
    graph.filters.append(
        f"{''.join(labels)}concat=n={len(labels)}:v=1:a=0,"
        f"tpad=stop=-1:stop_mode=clone,trim=end_frame={total_frames},setpts=PTS-STARTPTS[base]"
    )
    return "[base]"


def _texts(graph: _Graph, draft: dict[str, Any], width: int, label: str, workdir: Path) -> str:
    for index, segment in enumerate(_segments(draft, TEXT)):
        meta = segment.get("m", {})
        text = str(meta.get("text") or meta.get("title") or "").strip()
        if not text:
            continue
        png = text_png(text, width, workdir / f"text-{index}.png")
        k = graph.add_input("-i", str(png))
        start = int(segment.get("s", 0)) / 1000
        end = start + int(segment["d"]) / 1000
        y = TEXT_Y.get(str(meta.get("position")), TEXT_Y["center"])
        graph.filters.append(
            f"{label}[{k}:v]overlay=x=(W-w)/2:y={y}:enable='between(t,{start:.3f},{end:.3f})'"
            f"[t{index}]"
        )
        label = f"[t{index}]"
    graph.filters.append(f"{label}format=yuv420p,setparams=range=tv[vout]")
    return "[vout]"


def _audio(graph: _Graph, draft: dict[str, Any], resolve: MediaResolver) -> str:
    seconds = total_ms(draft) / 1000
    labels = []
    for index, segment in enumerate(_segments(draft, AUDIO)):
        meta = segment.get("m", {})
        length = int(segment["d"]) / 1000
        path = resolve(meta)
        if path is not None:
            k = graph.add_input("-stream_loop", "-1", "-t", f"{length + 1:.3f}", "-i", str(path))
        else:
            tone = float(meta.get("tone_hz", 220))
            k = graph.add_input("-f", "lavfi", "-i", f"sine=frequency={tone:g}:sample_rate=44100")
        volume = float(meta.get("volume", 1.0))
        delay = int(segment.get("s", 0))
        graph.filters.append(
            f"[{k}:a]aresample=44100,aformat=channel_layouts=stereo,atrim=duration={length:.3f},"
            f"asetpts=PTS-STARTPTS,volume={volume:.3f},adelay=delays={delay}:all=1[a{index}]"
        )
        labels.append(f"[a{index}]")
    if not labels:
        k = graph.add_input("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo")
        labels = [f"[{k}:a]"]
    mixed = "".join(labels)
    if len(labels) > 1:
        graph.filters.append(f"{mixed}amix=inputs={len(labels)}:normalize=0[amixed]")
        mixed = "[amixed]"
    graph.filters.append(f"{mixed}apad,atrim=duration={seconds:.3f}[aout]")
    return "[aout]"


def build_command(
    ffmpeg: str,
    draft: dict[str, Any],
    output: Path,
    *,
    scale: float,
    resolve: MediaResolver,
    workdir: Path,
) -> list[str]:
    """The full ffmpeg argv; progress lines go to stdout (`-progress pipe:1`)."""
    size = frame_size(draft, scale)
    graph = _Graph()
    base = _video(graph, draft, size, resolve)
    video = _texts(graph, draft, size[0], base, workdir)
    audio = _audio(graph, draft, resolve)
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        *graph.inputs,
        "-filter_complex", ";".join(graph.filters),
        "-map", video, "-map", audio,
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p",
        "-r", str(FPS), "-c:a", "aac", "-b:a", "128k", "-ar", "44100",
        "-t", f"{total_ms(draft) / 1000:.3f}", "-movflags", "+faststart",
        "-progress", "pipe:1", "-nostats", str(output),
    ]  # fmt: skip
