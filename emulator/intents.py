"""What a message asks for, read with simple regexes (the phrases are listed in README.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUM = r"(\d+(?:\.\d+)?)"
_SECONDS = r"\s*-?\s*(?:s|secs?|seconds?)\b"
GENERATE = re.compile(
    r"(?:\b(?:generate|create|produce|build)\b|\bmake\s+(?:me\s+)?(?:a|an|one|\d+)\b)"
    r"[^.!?\n]*?\b(?:video|clip|reel|ad|advert|commercial|promo)s?\b",
    re.I,
)
DURATION = re.compile(_NUM + _SECONDS, re.I)
LENGTH_CHANGE = re.compile(
    r"\b(?:make\s+it|(?:change|set)\s+(?:the\s+)?(?:length|duration)\s+to|"
    r"(?:shorten|extend|lengthen|trim|cut)\s+(?:it\s+|the\s+video\s+)?to)\s+(?:be\s+)?"
    + _NUM
    + _SECONDS
    + r"|"
    + _NUM
    + _SECONDS
    + r"\s+long\b",
    re.I,
)
ASPECT_RATIO = re.compile(r"\b(9\s*:\s*16|16\s*:\s*9|1\s*:\s*1)\b")
ASPECT_WORDS = {
    "9:16": re.compile(r"\b(?:vertical|portrait)\b", re.I),
    "16:9": re.compile(r"\b(?:landscape|horizontal|widescreen)\b", re.I),
    "1:1": re.compile(r"\bsquare\b", re.I),
}
ADD_TEXT = re.compile(
    r"\badd\b[^\"“”\n]*?\b(?:text|caption|title|overlay|headline|subtitle|words?)\b"
    r"[^\"“”\n]*?[\"“]([^\"”]+)[\"”]",
    re.I,
)
TEXT_RANGE = re.compile(
    r"\b(?:from|between)\s+" + _NUM + r"\s*(?:s|secs?|seconds?)?\s*(?:to|and|-|until)\s+"
    r"" + _NUM + _SECONDS,
    re.I,
)
TEXT_FIRST = re.compile(r"\bfor\s+the\s+first\s+" + _NUM + _SECONDS, re.I)
TEXT_LAST = re.compile(r"\bfor\s+the\s+last\s+" + _NUM + _SECONDS, re.I)
TEXT_START = re.compile(r"\bat\s+the\s+(?:start|beginning)\b", re.I)
TEXT_END = re.compile(r"\bat\s+the\s+end\b", re.I)
REMOVE_MUSIC = re.compile(
    r"\b(?:remove|drop|delete|mute|take\s+out|without|no)\b[^.!?\n]*?"
    r"\b(?:music|soundtrack|bgm|audio|song)\b",
    re.I,
)
ADD_MUSIC = re.compile(
    r"\b(?:add|put|include|use|with|give\s+it)\b[^.!?\n]*?\b(?:music|soundtrack|bgm|song)\b",
    re.I,
)
TITLE = re.compile(
    r"(?:\b(?:product(?:\s+name)?|title|name)\s*:\s*([^\n.;]+))|"
    r"(?:\b(?:titled|called|named|for)\s+[\"“]([^\"”]+)[\"”])",
    re.I,
)
DESCRIPTION = re.compile(r"\bdescription\s*:\s*([^\n]+)", re.I)
QUOTED = re.compile(r"[\"“]([^\"”]+)[\"”]")
SENTENCE = re.compile(r"[^.!?\n]+")
CAPTION_WORDS = 6
MAX_CAPTIONS = 3
DEFAULT_DURATION_S = 10.0
DEFAULT_ASPECT = "9:16"


@dataclass
class TextOverlay:
    text: str
    start_s: float | None = None
    end_s: float | None = None
    from_end_s: float | None = None


@dataclass
class Intents:
    """Everything a message asks for; empty when nothing was understood."""

    generate: bool = False
    duration_s: float | None = None
    aspect: str | None = None
    texts: list[TextOverlay] = field(default_factory=list)
    add_music: bool = False
    remove_music: bool = False
    title: str | None = None
    captions: list[str] = field(default_factory=list)

    @property
    def understood(self) -> bool:
        edits = self.duration_s, self.aspect, self.texts, self.add_music, self.remove_music
        return self.generate or any(edits)


def _aspect(message: str) -> str | None:
    match = ASPECT_RATIO.search(message)
    if match:
        return re.sub(r"\s", "", match.group(1))
    for aspect, words in ASPECT_WORDS.items():
        if words.search(message):
            return aspect
    return None


def _overlay(message: str, match: re.Match[str]) -> TextOverlay:
    overlay = TextOverlay(match.group(1).strip())
    tail = message[match.end() : match.end() + 80]
    if ranged := TEXT_RANGE.search(tail):
        overlay.start_s, overlay.end_s = float(ranged.group(1)), float(ranged.group(2))
    elif first := TEXT_FIRST.search(tail):
        overlay.start_s, overlay.end_s = 0.0, float(first.group(1))
    elif last := TEXT_LAST.search(tail):
        overlay.from_end_s = float(last.group(1))
    elif TEXT_START.search(tail):
        overlay.start_s, overlay.end_s = 0.0, 3.0
    elif TEXT_END.search(tail):
        overlay.from_end_s = 3.0
    return overlay


def _captions(message: str, title: str) -> list[str]:
    described = DESCRIPTION.search(message)
    source = described.group(1) if described else " ".join(SENTENCE.findall(message)[1:])
    captions = []
    for sentence in SENTENCE.findall(source):
        words = [w for w in QUOTED.sub(" ", sentence).split() if w]
        if len(words) < 2 or GENERATE.search(sentence) or title in sentence:
            continue
        caption = " ".join(words[:CAPTION_WORDS])
        captions.append(caption + ("..." if len(words) > CAPTION_WORDS else ""))
    return captions[:MAX_CAPTIONS]


def _title(message: str) -> str:
    match = TITLE.search(message)
    if match:
        return (match.group(1) or match.group(2)).strip()
    quoted = QUOTED.search(message)
    return quoted.group(1).strip() if quoted else "Your product"


def read_intents(message: str) -> Intents:
    intents = Intents()
    intents.texts = [_overlay(message, m) for m in ADD_TEXT.finditer(message)]
    intents.aspect = _aspect(message)
    intents.remove_music = bool(REMOVE_MUSIC.search(message))
    intents.add_music = not intents.remove_music and bool(ADD_MUSIC.search(message))
    if GENERATE.search(message):
        intents.generate = True
        duration = DURATION.search(message)
        intents.duration_s = float(duration.group(1)) if duration else None
        stripped = ADD_TEXT.sub(" ", message)
        intents.title = _title(stripped)
        intents.captions = _captions(stripped, intents.title)
    elif length := LENGTH_CHANGE.search(message):
        intents.duration_s = float(length.group(1) or length.group(2))
    return intents
