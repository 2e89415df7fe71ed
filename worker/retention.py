"""The beat task of RETENTION_DAYS (core/retention.py); nothing to do while it is unset."""

import logging

from core.db import session_scope
from core.retention import apply_retention
from core.settings import get_settings
from core.storage import open_storage

log = logging.getLogger("worker.retention")


def apply_configured() -> str:
    days = get_settings().retention_days
    if days is None:
        return "RETENTION_DAYS is unset: everything is kept"
    with session_scope() as session:
        report = apply_retention(session, days, dry_run=False, storage=open_storage())
    log.info("retention: %s", report)
    return str(report)
