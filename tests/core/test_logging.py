"""Structured logs: one JSON object per line, ids as fields, and no secret in any line."""

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from core.logging import configure_logging, log_fields
from core.settings import Settings

BACKEND_TOKEN = "nmv_usr_9f8e7d6c5b4a"
API_KEY = "nb_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4"


@pytest.fixture()
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(Settings(log_level="DEBUG"), stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_event_is_one_json_line_with_the_job_and_batch_ids(lines: io.StringIO) -> None:
    log = logging.getLogger("worker.runner")
    log.info(
        "job %s: %s -> %s",
        "j-1",
        "export",
        "advance",
        extra=log_fields(job_id="j-1", batch_id="b-1", ignored=None),
    )
    logging.getLogger("api.routes.batches").warning("plain")

    first, second = records(lines)
    assert first["message"] == "job j-1: export -> advance"
    assert first["job_id"] == "j-1" and first["batch_id"] == "b-1"
    assert "ignored" not in first
    assert first["level"] == "INFO" and first["logger"] == "worker.runner"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "plain" and second["level"] == "WARNING"


def test_tokens_api_keys_and_bearer_credentials_are_scrubbed_from_every_line(
    lines: io.StringIO,
) -> None:
    log = logging.getLogger("worker.tokens")
    log.info("using token %s", BACKEND_TOKEN)
    log.info("Authorization: Bearer abc.def-ghi and key %s", API_KEY)
    try:
        raise RuntimeError(f"backend refused {BACKEND_TOKEN}")
    except RuntimeError:
        log.exception("call failed", extra={"header": f"Bearer {API_KEY}"})

    text = lines.getvalue()
    assert BACKEND_TOKEN not in text and API_KEY not in text and "abc.def-ghi" not in text
    using, auth, failed = records(lines)
    assert using["message"] == "using token nmv_***"
    assert auth["message"] == "Authorization: Bearer *** and key nb_***"
    assert "nmv_***" in failed["exc_info"]
    assert failed["header"] == "Bearer ***"


def test_celery_workers_and_beat_log_json_through_the_same_setup(lines: io.StringIO) -> None:
    from celery.signals import setup_logging

    import worker.celery_app  # noqa: F401 (connects the receiver that replaces Celery's setup)
    from core.logging import ScrubbingJsonFormatter

    setup_logging.send(sender=None, loglevel=logging.INFO, logfile=None, format="", colorize=False)

    ours = [h for h in logging.getLogger().handlers if h.get_name() == "nemo-batch-json"]
    assert len(ours) == 1
    assert isinstance(ours[0].formatter, ScrubbingJsonFormatter)


def test_the_object_stores_secret_and_presigned_signatures_are_scrubbed() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    secret = "s3cr3t-Access-Key-0123456789"
    configure_logging(Settings(aws_secret_access_key=secret), stream=stream)
    try:
        log = logging.getLogger("core.storage")
        log.warning("store refused the key %s", secret)
        log.warning(
            "redirect to http://objects:8333/b/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123"
        )
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
    text = stream.getvalue()
    assert secret not in text and "abc123" not in text and "AKIA" not in text
    refused, redirect = records(stream)
    assert refused["message"] == "store refused the key ***"
    assert "X-Amz-Signature=***" in redirect["message"]
