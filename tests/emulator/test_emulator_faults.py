"""Fault profiles: the same seed meets the same faults in the same sequence of calls."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conftest import REGISTERED_TOKEN
from emulator_helpers import NemoTestClient

from tests.support.emulator_proc import EmulatorProcess, start_emulator

MESSAGES = ["generate a 1 second video", "make it square", 'add the text "Hi"', "make it 2 seconds"]


def _turn_summary(client: NemoTestClient, session_id: str, text: str) -> str:
    body = {"session_id": session_id, "new_message": {"parts": [{"text": text}]}}
    with client.http.stream("POST", "/run_sse", json=body) as response:
        if response.status_code != 200:
            return f"http {response.status_code}"
        if not response.headers["content-type"].startswith("text/event-stream"):
            return f"code {response.read().decode()[:12]}"
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    kinds = ["error" if '"error"' in x else "text" if '"text"' in x else "tool" for x in lines]
    return ",".join(kinds)


def _wait_renders_settled(proc: EmulatorProcess) -> None:
    """Through the control API, so the number of polls cannot shift the fault draws."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        renders = proc.stats()["renders"]
        if renders["completed"] + renders["failed"] >= renders["posted"]:
            return
        time.sleep(0.05)
    raise TimeoutError("renders did not settle")


def _scenario(proc: EmulatorProcess) -> list[Any]:
    """A fixed sequence of calls; what each one met."""
    client = NemoTestClient(proc.base_url, token=REGISTERED_TOKEN)
    outcomes: list[Any] = []
    for _ in range(4):
        created = client.http.post("/api/tasks/me/with-session/nemo_agent", json={})
        outcomes.append(created.status_code)
        if created.status_code != 200:
            continue
        session_id = created.json()["data"]["session_id"]
        for text in MESSAGES:
            outcomes.append(_turn_summary(client, session_id, text))
            state = client.http.get(f"/api/state/nemo_agent/me/{session_id}/latest")
            outcomes.append((state.status_code, state.json().get("code")))
        draft = {"ar": "1:1", "d": 500, "t": [{"tt": 0, "sg": [{"s": 0, "d": 500, "m": {}}]}]}
        posted = client.render(session_id, draft)
        outcomes.append(posted.status_code)
        if posted.status_code == 200:
            _wait_renders_settled(proc)
            status = client.http.get(f"/api/render/proxy/lambda/{posted.json()['data']['id']}")
            outcomes.append((status.status_code, status.json().get("data", {}).get("status")))
    outcomes.append(proc.stats()["faults"])
    return outcomes


def test_same_seed_meets_the_same_faults_and_another_seed_differs(tmp_path: Path) -> None:
    options: dict[str, Any] = {
        "profile": "hostile",
        "time_scale": 0.0,
        "tokens": [REGISTERED_TOKEN],
        "extra_args": ["--rate-limit-rps", "0"],  # the token bucket depends on the clock
    }
    proc = start_emulator(tmp_path / "a", seed=7, **options)
    try:
        first = _scenario(proc)
        proc.control("reset")
        second = _scenario(proc)
    finally:
        proc.stop()
    other = start_emulator(tmp_path / "b", seed=8, **options)
    try:
        third = _scenario(other)
    finally:
        other.stop()
    assert first == second
    assert first[-1], "the hostile profile injected no fault at all"
    assert third != first
