"""What a job's state and error mean to a person, and what to do about them (the web page).

The error codes are the workers' (`worker/policy.py`, the steps' `Fail`s); the advice is the
README's troubleshooting table, said in one sentence each.
"""

from core.states import JobState

STATE_WORDS: dict[JobState, str] = {
    JobState.QUEUED: "Waiting its turn",
    JobState.ADMITTED: "Starting",
    JobState.TOKEN: "Connecting to the backend",
    JobState.FETCH: "Fetching its images and clips",
    JobState.SESSION: "Opening a session",
    JobState.UPLOAD: "Uploading media",
    JobState.PROMPT: "The agent is editing",
    JobState.EXPORT: "Exporting",
    JobState.RENDER: "Rendering",
    JobState.DOWNLOAD: "Downloading the video",
    JobState.RETRY_WAIT: "Waiting to try again",
    JobState.WAITING_CREDITS: "Waiting for credits",
    JobState.SUCCEEDED: "Ready",
    JobState.FAILED: "Failed",
    JobState.CANCELED: "Canceled",
}

_RETRY = "Retry the job."
ADVICE: dict[str, str] = {
    "token_invalid": "Check NEMO_TOKEN or the tenant's own backend token, then retry the job.",
    "token_unavailable": "Check that the backend answers at NEMO_API_BASE, then retry the job.",
    "session_lost": _RETRY + " Nothing already done is paid for twice.",
    "unsupported_media": "Convert the file to jpg, png, webp, mp4, mov, mp3, m4a, wav or aac "
    "and retry the job.",
    "media_too_large": "Trim or compress the file below 200 MB and retry the job.",
    "asset_missing": "Upload the product's media again and submit it anew.",
    "export_blocked": "The backend plan forbids exports: a plan question, not credits.",
    "rate_limited": "The backend kept throttling; retry later or lower NEMO_RATE_LIMIT_RPS.",
    "backend_unavailable": "Check the backend's status, then retry the batch's failed jobs.",
    "no_result": "Retry the job; if it fails again, reword its prompt (see its events).",
    "agent_no_edit": "The agent asked or refused instead of editing: reword the prompt and retry.",
    "render_failed": _RETRY + " A repeated failure is the backend's: report its text.",
    "render_lost": _RETRY,
    "render_timeout": _RETRY,
    "invalid_video": _RETRY,
    "worker_crashed": "Look at the worker logs for this job, then retry it once fixed.",
}
DEFAULT_ADVICE = "Retry the job; if it fails again, read its events (GET /v1/jobs/{id})."
WAITING_CREDITS_ADVICE = "Register or top up at the bind link, then resume the batch."


def advice_for(state: JobState, error_code: str | None) -> str | None:
    """What to do about a job in `state`: None when nothing is needed."""
    if state == JobState.FAILED:
        return ADVICE.get(error_code or "", DEFAULT_ADVICE)
    if state == JobState.WAITING_CREDITS:
        return WAITING_CREDITS_ADVICE
    return None
