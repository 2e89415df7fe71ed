"""Hold N SSE streams open on the emulator and time other calls meanwhile (not a test).

.venv/bin/python bench/emulator_streams.py --streams 1000 --hold 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.emulator_proc import start_emulator

TOKEN = "nmv_usr_bench_token"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "X-Skill-Source": "bench",
    "X-Skill-Version": "0",
    "X-Skill-Platform": "unknown",
}


async def _stream(client: httpx.AsyncClient, session_id: str, opened: list[float]) -> int:
    body = {"session_id": session_id, "new_message": {"parts": [{"text": "generate a 1s video"}]}}
    started, lines = time.monotonic(), 0
    async with client.stream("POST", "/run_sse", json=body) as response:
        opened.append(time.monotonic() - started)
        async for _ in response.aiter_lines():
            lines += 1
    return lines


async def run(base_url: str, streams: int, hold_s: float) -> None:
    limits = httpx.Limits(max_connections=streams + 50, max_keepalive_connections=streams + 50)
    async with httpx.AsyncClient(
        base_url=base_url, headers=HEADERS, limits=limits, timeout=120
    ) as c:
        session_id = (await c.post("/api/tasks/me/with-session/nemo_agent")).json()["data"][
            "session_id"
        ]
        opened: list[float] = []
        started = time.monotonic()
        tasks = [asyncio.create_task(_stream(c, session_id, opened)) for _ in range(streams)]
        while len(opened) < streams and time.monotonic() - started < 120:
            await asyncio.sleep(0.05)
        open_all_s = time.monotonic() - started
        latencies = []
        while time.monotonic() - started < hold_s * 0.8:
            t0 = time.monotonic()
            answer = await c.get("/api/credits/balance/simple")
            assert answer.json()["code"] == 0
            latencies.append((time.monotonic() - t0) * 1000)
            await asyncio.sleep(0.2)
        stats = (await c.get("/_emulator/stats")).json()
        lines = await asyncio.gather(*tasks)
    print(f"streams requested        {streams}")
    print(f"streams open (peak)      {stats['streams']['peak']}")
    print(f"time to open all         {open_all_s:.2f} s")
    print(
        f"stream open p50 / max    {statistics.median(opened) * 1000:.0f} / "
        f"{max(opened) * 1000:.0f} ms"
    )
    if latencies:
        print(
            f"/api/credits p50 / max   {statistics.median(latencies):.1f} / "
            f"{max(latencies):.1f} ms over {len(latencies)} calls"
        )
    print(f"streams ended normally   {sum(1 for n in lines if n > 0)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=10.0, help="seconds each turn takes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        proc = start_emulator(Path(data_dir), tokens=[TOKEN], extra_args=["--keepalive", "2"])
        try:
            proc.control("config", {"reply_delay_s": [args.hold, args.hold]})
            asyncio.run(run(proc.base_url, args.streams, args.hold))
        finally:
            proc.stop()


if __name__ == "__main__":
    main()
