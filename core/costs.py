"""The credit estimate of a job, one rule for intake's warning and the workers' preflight."""

from collections.abc import Iterable, Mapping

from core.settings import get_settings


def estimated_cost(job_inputs: Iterable[Mapping[str, object]]) -> int:
    """About 100 credits a generation and 50 an edit (each message after the first is an edit)."""
    settings = get_settings()
    total = 0
    for job_input in job_inputs:
        messages = job_input.get("messages")
        edits = max(0, len(messages) - 1) if isinstance(messages, list) else 0
        total += settings.nemo_generation_cost + edits * settings.nemo_edit_cost
    return total
