"""Backend variants: timings and shapes nemo-api.md's "What no source rules out" lists, each
served on request (`--variant NAME`, repeatable, or the profile's `variants`).

A variant that applies to some decisions only (a share of sessions, turns or renders) applies
to `variant_rate` of them, drawn deterministically like every other fault.
"""

from __future__ import annotations

VARIANTS: dict[str, str] = {
    "codes_in_200": "every error answer is HTTP 200 with its status or code in the body; a "
    "share of calls answer a 429 that way, half of them without Retry-After",
    "stream_codes": "a share of turns end on a code inside the stream (429), and refusals of a "
    "turn (2001 out of credits) come inside the stream instead of before it",
    "long_silence": "no keep-alive or heartbeat while the agent works, and a turn whose client "
    "leaves is canceled before it edits anything (as ADK does)",
    "asks_question": "a share of sessions answer their first message with a question and edit "
    "nothing; the next message is taken as the answer",
    "expired_urls": "a share of finished renders first hand out an output URL that has already "
    "expired (403 or 410, or a 200 HTML page); asking the status again gives a fresh one",
    "status_words": "render statuses in synonyms and any case, the output URL under varying "
    "keys (or none: the download route only), and render ids the backend assigns itself",
    "status_envelope": 'answers in the {"status": "success", "data": ...} envelope, with '
    "data null where nothing is to say",
    "stubborn_agent": "every turn asks a question and nothing is ever edited (not part of all)",
}

ALL = "all"
NOT_IN_ALL = frozenset({"stubborn_agent"})


def expand(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validated variant names, `all` expanded, in a stable order; unknown names raise."""
    wanted: set[str] = set()
    for name in names:
        if name == ALL:
            wanted |= set(VARIANTS) - NOT_IN_ALL
        elif name in VARIANTS:
            wanted.add(name)
        else:
            known = ", ".join([*VARIANTS, ALL])
            raise ValueError(f"unknown variant {name!r}: use one of {known}")
    return tuple(name for name in VARIANTS if name in wanted)
