"""Many open SSE streams at once while other calls still answer promptly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from conftest import REGISTERED_TOKEN
from emulator_helpers import ATTRIBUTION

from tests.support.emulator_proc import start_emulator

STREAMS = 200
REPLY_DELAY_S = 4.0


async def _hold_stream(client: httpx.AsyncClient, session_id: str) -> tuple[int, int]:
    """(keep-alive comments, data events) seen before the stream closed."""
    body = {"session_id": session_id, "new_message": {"parts": [{"text": "generate a 1s video"}]}}
    keepalives = events = 0
    async with client.stream("POST", "/run_sse", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            keepalives += line.startswith(":")
            events += line.startswith("data:")
    return keepalives, events


async def _scenario(base_url: str) -> None:
    headers = {**ATTRIBUTION, "Authorization": f"Bearer {REGISTERED_TOKEN}"}
    limits = httpx.Limits(max_connections=STREAMS + 20, max_keepalive_connections=STREAMS + 20)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60
    ) as client:
        created = await client.post("/api/tasks/me/with-session/nemo_agent", json={})
        session_id = created.json()["data"]["session_id"]
        streams = [asyncio.create_task(_hold_stream(client, session_id)) for _ in range(STREAMS)]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            opened = (await client.get("/_emulator/stats")).json()["streams"]["open"]
            if opened >= STREAMS:
                break
            await asyncio.sleep(0.1)
        assert opened >= STREAMS, f"only {opened} streams open"
        latencies = []
        for _ in range(5):
            started = time.monotonic()
            answer = await client.get("/api/credits/balance/simple")
            latencies.append(time.monotonic() - started)
            assert answer.json()["code"] == 0
        assert max(latencies) < 0.5, latencies
        results = await asyncio.gather(*streams)
    assert all(events >= 3 for _, events in results)
    assert sum(keepalives for keepalives, _ in results) >= STREAMS


def test_200_open_streams_leave_other_calls_prompt(tmp_path: Path) -> None:
    proc = start_emulator(
        tmp_path,
        time_scale=1.0,
        tokens=[REGISTERED_TOKEN],
        extra_args=["--keepalive", "0.5"],
    )
    try:
        proc.control("config", {"reply_delay_s": [REPLY_DELAY_S, REPLY_DELAY_S]})
        asyncio.run(_scenario(proc.base_url))
        assert proc.stats()["streams"]["peak"] >= STREAMS
    finally:
        proc.stop()
