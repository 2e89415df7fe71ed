"""The timeline summary users read on a job, made from the backend's opaque draft."""

from worker.timeline import has_segments, summarize

DRAFT = {
    "t": [
        {"tt": 0, "sg": [{"d": 5000, "m": {"title": "mug.jpg"}}, {"d": 5000, "m": {}}]},
        {"tt": 1, "sg": [{"d": 10000, "m": {"name": "Lo-fi"}}]},
        {"tt": 7, "sg": [{"d": 3000, "m": {"text": "Blue Mug"}}]},
    ]
}


def test_summary_names_each_track_with_its_length() -> None:
    assert summarize(DRAFT) == (
        "Timeline (3 tracks): 1. Video: 2 segments (0-10s) 2. Audio: Lo-fi (0-10s) "
        '3. Text: "Blue Mug" (0-3s)'
    )


def test_a_draft_is_exportable_only_with_a_non_empty_segment_list() -> None:
    assert has_segments(DRAFT)
    assert not has_segments({"t": [{"tt": 0, "sg": []}]})
    assert not has_segments(None)
