"""Text overlays drawn as transparent PNGs with Pillow, so rendering needs no font in ffmpeg."""

from __future__ import annotations

import textwrap
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/Library/Fonts/Arial Bold.ttf",
)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=32)
def _font(size: int) -> Font:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)


def text_png(text: str, width: int, path: Path) -> Path:
    """White text on a translucent dark box, `width` wide, wrapped to fit."""
    size = max(10, width // 16)
    font = _font(size)
    chars_per_line = max(8, int(width * 0.9 / (size * 0.55)))
    lines = textwrap.wrap(text, chars_per_line) or [" "]
    line_height = int(size * 1.3)
    padding = max(4, size // 3)
    height = line_height * len(lines) + 2 * padding
    height += height % 2
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, height), fill=(0, 0, 0, 150))
    for index, line in enumerate(lines):
        left, _, right, _ = draw.textbbox((0, 0), line, font=font)
        x = (width - (right - left)) // 2
        draw.text((x, padding + index * line_height), line, font=font, fill=(255, 255, 255, 255))
    image.save(path)
    return path
