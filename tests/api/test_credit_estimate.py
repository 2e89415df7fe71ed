"""A batch's credit estimate at intake is the workers' estimate of its jobs (`core.costs`)."""

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api.conftest import Account, create_batch


def test_a_batchs_estimate_is_a_generation_per_job_and_an_edit_per_further_message(
    client: TestClient, account: Account
) -> None:
    from core.costs import estimated_cost
    from core.db import session_scope
    from core.models import Job
    from core.settings import get_settings

    items: list[dict[str, Any]] = [
        {"title": "Mug"},
        {"title": "Cup", "messages": ["Make the music calmer.", "Shorter titles."]},
    ]
    batch = create_batch(client, account, items=items)

    settings = get_settings()
    generation, edit = settings.nemo_generation_cost, settings.nemo_edit_cost
    assert batch["estimated_credits"] == 2 * generation + 2 * edit
    with session_scope() as session:
        inputs = session.scalars(
            select(Job.input).where(Job.batch_id == uuid.UUID(batch["id"]))
        ).all()
    assert estimated_cost(inputs) == batch["estimated_credits"]
