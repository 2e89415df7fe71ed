"""Draw the demo's product pictures, clip and tune (run once; the files are committed).

`.venv/bin/python examples/make_assets.py` rewrites examples/images, examples/clips and
examples/music with simple shapes drawn by Pillow and ffmpeg (from imageio-ffmpeg).
"""

import subprocess
from collections.abc import Callable
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageColor, ImageDraw

HERE = Path(__file__).resolve().parent
Draw = ImageDraw.ImageDraw


def _canvas(size: tuple[int, int], top: str, bottom: str) -> tuple[Image.Image, Draw]:
    """A vertical two-colour gradient backdrop, like a studio sweep."""
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    a, b = ImageColor.getrgb(top), ImageColor.getrgb(bottom)
    for y in range(height):
        t = y / max(height - 1, 1)
        draw.line([(0, y), (width, y)], fill=tuple(int(a[i] + (b[i] - a[i]) * t) for i in range(3)))
    shadow = tuple(int(channel * 0.8) for channel in b[:3])
    draw.ellipse([width * 0.2, height * 0.8, width * 0.8, height * 0.9], fill=shadow)
    return image, draw


def mug(size: tuple[int, int]) -> Image.Image:
    image, draw = _canvas(size, "#f4efe6", "#d9cbb3")
    w, h = size
    draw.rounded_rectangle([w * 0.28, h * 0.3, w * 0.62, h * 0.82], 18, fill="#2f6db3")
    draw.ellipse([w * 0.28, h * 0.26, w * 0.62, h * 0.34], fill="#1f4f86")
    draw.arc([w * 0.54, h * 0.4, w * 0.76, h * 0.68], -90, 90, fill="#2f6db3", width=int(w * 0.04))
    draw.ellipse([w * 0.38, h * 0.5, w * 0.52, h * 0.6], fill="#f4efe6")
    return image


def sneaker(size: tuple[int, int]) -> Image.Image:
    image, draw = _canvas(size, "#e8f1f8", "#b9cfe0")
    w, h = size
    draw.rounded_rectangle([w * 0.12, h * 0.66, w * 0.88, h * 0.76], 12, fill="#ffffff")
    draw.polygon(
        [(w * 0.14, h * 0.66), (w * 0.2, h * 0.42), (w * 0.42, h * 0.38), (w * 0.58, h * 0.5),
         (w * 0.86, h * 0.56), (w * 0.88, h * 0.66)],
        fill="#d6453d",
    )  # fmt: skip
    for n in range(4):
        x = w * (0.34 + n * 0.05)
        draw.line([(x, h * 0.44), (x + w * 0.04, h * 0.5)], fill="#ffffff", width=4)
    draw.line([(w * 0.16, h * 0.62), (w * 0.86, h * 0.63)], fill="#222222", width=3)
    return image


def tshirt(size: tuple[int, int]) -> Image.Image:
    image, draw = _canvas(size, "#fdf6e3", "#eadfc4")
    w, h = size
    draw.polygon(
        [(w * 0.3, h * 0.2), (w * 0.42, h * 0.16), (w * 0.58, h * 0.16), (w * 0.7, h * 0.2),
         (w * 0.86, h * 0.36), (w * 0.76, h * 0.44), (w * 0.7, h * 0.38), (w * 0.7, h * 0.82),
         (w * 0.3, h * 0.82), (w * 0.3, h * 0.38), (w * 0.24, h * 0.44), (w * 0.14, h * 0.36)],
        fill="#2a9d8f",
    )  # fmt: skip
    draw.ellipse([w * 0.43, h * 0.13, w * 0.57, h * 0.21], fill="#fdf6e3")
    draw.ellipse([w * 0.43, h * 0.42, w * 0.57, h * 0.56], outline="#f4d35e", width=6)
    return image


def backpack(size: tuple[int, int]) -> Image.Image:
    image, draw = _canvas(size, "#eef2e6", "#c8d3b5")
    w, h = size
    draw.arc([w * 0.38, h * 0.1, w * 0.62, h * 0.3], 180, 360, fill="#3d405b", width=8)
    draw.rounded_rectangle([w * 0.27, h * 0.2, w * 0.73, h * 0.84], 40, fill="#e07a5f")
    draw.rounded_rectangle([w * 0.34, h * 0.52, w * 0.66, h * 0.78], 20, fill="#c8644b")
    draw.line([(w * 0.34, h * 0.58), (w * 0.66, h * 0.58)], fill="#3d405b", width=4)
    return image


def sunglasses(size: tuple[int, int]) -> Image.Image:
    image, draw = _canvas(size, "#fff4d6", "#ffd38a")
    w, h = size
    for x0 in (0.14, 0.54):
        draw.rounded_rectangle([w * x0, h * 0.38, w * (x0 + 0.32), h * 0.62], 30, fill="#1b1b1b")
        draw.ellipse([w * (x0 + 0.05), h * 0.42, w * (x0 + 0.12), h * 0.48], fill="#5a5a5a")
    draw.line([(w * 0.46, h * 0.44), (w * 0.54, h * 0.44)], fill="#1b1b1b", width=8)
    return image


def watch(size: tuple[int, int]) -> Image.Image:
    image, draw = _canvas(size, "#ecebf3", "#c5c3d6")
    w, h = size
    draw.rectangle([w * 0.42, h * 0.05, w * 0.58, h * 0.95], fill="#6b4f3a")
    draw.ellipse([w * 0.3, h * 0.33, w * 0.7, h * 0.67], fill="#c0c0c0")
    draw.ellipse([w * 0.33, h * 0.36, w * 0.67, h * 0.64], fill="#ffffff")
    draw.line([(w * 0.5, h * 0.5), (w * 0.5, h * 0.4)], fill="#222222", width=5)
    draw.line([(w * 0.5, h * 0.5), (w * 0.59, h * 0.52)], fill="#222222", width=4)
    return image


def lamp(size: tuple[int, int]) -> Image.Image:
    image, draw = _canvas(size, "#2b2d42", "#141522")
    w, h = size
    draw.polygon(
        [(w * 0.3, h * 0.42), (w * 0.4, h * 0.18), (w * 0.6, h * 0.18), (w * 0.7, h * 0.42)],
        fill="#f6bd60",
    )
    draw.rectangle([w * 0.485, h * 0.42, w * 0.515, h * 0.8], fill="#8d99ae")
    draw.ellipse([w * 0.36, h * 0.78, w * 0.64, h * 0.86], fill="#8d99ae")
    return image


def plant(size: tuple[int, int]) -> Image.Image:
    image, draw = _canvas(size, "#f1faee", "#cfe3d4")
    w, h = size
    for dx, dy in ((-0.12, 0.0), (0.12, 0.0), (0.0, -0.1), (-0.07, -0.06), (0.07, -0.06)):
        cx, cy = w * (0.5 + dx), h * (0.36 + dy)
        draw.ellipse([cx - w * 0.08, cy - h * 0.12, cx + w * 0.08, cy + h * 0.12], fill="#40916c")
    draw.polygon(
        [(w * 0.32, h * 0.5), (w * 0.68, h * 0.5), (w * 0.62, h * 0.84), (w * 0.38, h * 0.84)],
        fill="#bc6c25",
    )
    return image


PICTURES: dict[str, tuple[Callable[[tuple[int, int]], Image.Image], tuple[int, int], str]] = {
    "mug": (mug, (480, 480), "jpg"),
    "sneaker": (sneaker, (640, 400), "png"),
    "tshirt": (tshirt, (400, 520), "jpg"),
    "backpack": (backpack, (420, 560), "jpg"),
    "sunglasses": (sunglasses, (640, 360), "jpg"),
    "watch": (watch, (360, 640), "jpg"),
    "lamp": (lamp, (480, 480), "png"),
    "plant": (plant, (480, 600), "jpg"),
}


def write_pictures() -> None:
    folder = HERE / "images"
    folder.mkdir(exist_ok=True)
    for name, (draw, size, extension) in PICTURES.items():
        image = draw(size)
        path = folder / f"{name}.{extension}"
        if extension == "png":
            image.quantize(64).save(path, optimize=True)
        else:
            image.save(path, quality=78, optimize=True)


def write_clip() -> None:
    """Two seconds of the sneaker sliding in, 320x200 at 12 fps."""
    folder = HERE / "clips"
    folder.mkdir(exist_ok=True)
    still = sneaker((320, 200))
    backdrop, _ = _canvas((320, 200), "#e8f1f8", "#b9cfe0")
    writer = imageio_ffmpeg.write_frames(
        str(folder / "sneaker-run.mp4"),
        (320, 200),
        fps=12,
        codec="libx264",
        output_params=["-crf", "34", "-preset", "veryslow", "-movflags", "+faststart"],
        macro_block_size=8,
    )
    writer.send(None)
    for n in range(24):
        frame = backdrop.copy()
        frame.paste(still.crop((0, 0, 320, 200)), (int(-160 + n * 160 / 23), 0))
        writer.send(frame.tobytes())
    writer.close()


def write_tune() -> None:
    """Four seconds of a rising arpeggio as AAC in an .m4a."""
    folder = HERE / "music"
    folder.mkdir(exist_ok=True)
    tune = "0.3*sin(2*PI*t*(262+65*floor(mod(4*t,4))))*exp(-3*mod(t,0.25))"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", f"aevalsrc='{tune}':s=22050:d=4",
         "-c:a", "aac", "-b:a", "32k", str(folder / "arpeggio.m4a")],
        check=True,
    )  # fmt: skip


if __name__ == "__main__":
    write_pictures()
    write_clip()
    write_tune()
