"""Prompt templates: which placeholders exist, checking a template, rendering one per product."""

import re
import string
from collections.abc import Mapping
from typing import Any

PLACEHOLDERS: tuple[str, ...] = ("title", "description", "duration_s", "aspect_ratio")

STANDING_INSTRUCTION = (
    "Decide every detail yourself and do not ask me any questions: make the finished video now."
)
"""Nobody answers the agent in a batch: every first message ends with this, whatever template
made it (a question instead of an edit is followed up once, then fails the job)."""

DEFAULT_TEMPLATE = (
    'Generate a {duration_s}-second {aspect_ratio} product video for "{title}". {description} '
    "Use the uploaded images, add the product title as a text overlay and short captions, "
    "and background music. Make it ready to share on social media. " + STANDING_INSTRUCTION
)


_SPACES = re.compile(r"[ \t]{2,}")


class TemplateError(ValueError):
    """A template that cannot be rendered: unknown placeholders or broken braces."""


def check_template(template: str) -> None:
    """Raise `TemplateError` naming every unknown placeholder (use `{{` for a literal brace)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise TemplateError(
            f"the template has an unmatched brace ({error}); write {{{{ or }}}} for a literal one"
        ) from None
    fields = [field for _, field, _, _ in parsed if field is not None]
    unknown = sorted({field for field in fields if field not in PLACEHOLDERS})
    if unknown:
        names = ", ".join("{" + field + "}" for field in unknown)
        allowed = ", ".join("{" + field + "}" for field in PLACEHOLDERS)
        raise TemplateError(f"unknown placeholder(s) {names}; allowed: {allowed}")
    for _, field, spec, conversion in parsed:
        if field is not None and (spec or conversion):
            raise TemplateError(f"placeholder {{{field}}} may not carry a format spec")


def render(template: str, values: Mapping[str, Any]) -> str:
    """The message for one product; missing values render empty, extra spaces are collapsed,
    and the standing instruction ends it (appended to a user's own template)."""
    filled = {name: "" if values.get(name) is None else values[name] for name in PLACEHOLDERS}
    message = _SPACES.sub(" ", template.format_map(filled)).strip()
    if STANDING_INSTRUCTION in message:
        return message
    return f"{message} {STANDING_INSTRUCTION}"
