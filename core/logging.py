"""Structured logs: one JSON line per event on stderr, with secrets scrubbed.

The API factory and every worker and beat process call `configure_logging` (Celery's own root
logger setup is replaced through its `setup_logging` signal). Pass ids with
`log.info("...", extra={"job_id": ..., "batch_id": ...})`: they become fields of the line.
"""

import logging
import re
import sys
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from core.settings import Settings

_SECRETS = (
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 ***"),
    (re.compile(r"\bnmv_[A-Za-z0-9._~+/=-]+"), "nmv_***"),
    (re.compile(r"\bnb_[A-Za-z0-9_-]{8,}"), "nb_***"),
    (re.compile(r"\bwhsec_[A-Za-z0-9_-]{8,}"), "whsec_***"),
    # a presigned object-store URL is a credential while it lasts
    (re.compile(r"\b(X-Amz-Signature|X-Amz-Credential|Signature)=[^&\s\"']+"), r"\1=***"),
)
_ANY_SECRET = re.compile("|".join(f"(?:{p.pattern})" for p, _ in _SECRETS), re.IGNORECASE)
"""One scan that finds any of them (or more: it ignores case): most lines hold none, and five
substitutions over every line were half of what a log line cost a worker."""
_LITERALS: set[str] = set()
"""Configured secrets with no recognisable shape (the object store's secret access key)."""
_HANDLER_NAME = "nemo-batch-json"
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "gunicorn.error")


def scrub(text: str) -> str:
    """`text` with backend tokens, API keys, webhook secrets and credentials masked."""
    if _ANY_SECRET.search(text):
        for pattern, replacement in _SECRETS:
            text = pattern.sub(replacement, text)
    for secret in _LITERALS:
        text = text.replace(secret, "***")
    return text


class ScrubSecrets(logging.Filter):
    """Masks secrets in the formatted message of every record passing the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for the formatter to report
            return True
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class ScrubbingJsonFormatter(JsonFormatter):
    """JSON lines; the whole line is scrubbed too, so tracebacks and extras leak nothing."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def json_formatter() -> ScrubbingJsonFormatter:
    return ScrubbingJsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        json_ensure_ascii=False,
    )


def configure_logging(
    settings: Settings, *, level: str | int | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's records to one JSON handler on `stream` (stderr by default)."""
    if settings.aws_secret_access_key and len(settings.aws_secret_access_key) >= 8:
        _LITERALS.add(settings.aws_secret_access_key)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter())
    handler.addFilter(ScrubSecrets())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):  # ours from an earlier call (others, e.g. pytest's, stay)
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or settings.log_level.upper())
    for name in _OWN_HANDLERS:  # servers that install their own text handlers
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for chatty in ("httpx", "httpx2"):  # one line per request is noise (httpx2: TestClient)
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler


def log_fields(**ids: Any) -> dict[str, Any]:
    """`extra=` for a log call: the ids given, as strings, None ones left out."""
    return {name: str(value) for name, value in ids.items() if value is not None}
