"""The media references a job's input holds (as `core.intake` resolves them): asset refs
`{"asset_id", "path", ...}` and URL refs `{"url", "kind"}` (older jobs: a bare URL string)."""

from typing import Any

from core.media import job_media


def ref_url(ref: Any) -> str | None:
    """The http(s) URL a reference names, if it names one."""
    url = ref.get("url") if isinstance(ref, dict) else ref
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def input_urls(job_input: dict[str, Any]) -> list[str]:
    """The job's media URLs, each once, in order."""
    return list(dict.fromkeys(url for ref in job_media(job_input) if (url := ref_url(ref))))
