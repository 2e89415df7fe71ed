"""Events users subscribe to (webhooks); filled in by the webhooks work."""

from collections.abc import Callable

from sqlalchemy.orm import Session

from core.models import Batch, Job


def notifications_for(
    session: Session, job: Job, finished_batch: Batch | None
) -> list[Callable[[], None]]:
    """Webhook deliveries for a final job and, when it was the last, for its batch."""
    return []
