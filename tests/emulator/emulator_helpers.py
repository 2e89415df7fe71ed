"""A tiny client for the emulator's contract, so tests read as the flow they check."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

ATTRIBUTION = {
    "X-Skill-Source": "video-generator-ki-free",
    "X-Skill-Version": "1.0.0",
    "X-Skill-Platform": "unknown",
}


class NemoTestClient:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, headers=ATTRIBUTION, timeout=60)
        if token:
            self.use_token(token)

    def use_token(self, token: str) -> None:
        self.http.headers["Authorization"] = f"Bearer {token}"

    def anonymous(self, client_id: str | None = None) -> dict[str, Any]:
        headers = {"X-Client-Id": client_id or str(uuid.uuid4())}
        data: dict[str, Any] = self.http.post("/api/auth/anonymous-token", headers=headers).json()
        self.use_token(data["data"]["token"])
        return data["data"]

    def session(self) -> str:
        body = {"task_name": "project", "language": "en"}
        answer = self.http.post("/api/tasks/me/with-session/nemo_agent", json=body).json()
        assert answer["code"] == 0, answer
        return str(answer["data"]["session_id"])

    def upload(self, session_id: str, *paths: Path) -> dict[str, Any]:
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
        answer: dict[str, Any] = self.http.post(
            f"/api/upload-video/nemo_agent/me/{session_id}", files=files
        ).json()
        return answer

    def send(self, session_id: str, text: str, **body_keys: Any) -> list[dict[str, Any]]:
        """One turn: the `data:` events of the stream, in order."""
        body = {
            "app_name": "nemo_agent",
            "user_id": "me",
            "session_id": session_id,
            "new_message": {"role": "user", "parts": [{"text": text}]},
            **body_keys,
        }
        events = []
        with self.http.stream("POST", "/run_sse", json=body) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("data:") and line[5:].strip():
                    events.append(json.loads(line[5:]))
        return events

    def state(self, session_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/api/state/nemo_agent/me/{session_id}/latest").json()
        assert answer["code"] == 0, answer
        return dict(answer["data"]["state"])

    def balance(self) -> dict[str, Any]:
        return dict(self.http.get("/api/credits/balance/simple").json()["data"])

    def render(
        self, session_id: str, draft: dict[str, Any], render_id: str | None = None
    ) -> httpx.Response:
        body = {
            "id": render_id or f"render_{uuid.uuid4().hex}",
            "sessionId": session_id,
            "draft": draft,
        }
        return self.http.post("/api/render/proxy/lambda", json=body)

    def wait_render(self, render_id: str, deadline_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            answer = self.http.get(f"/api/render/proxy/lambda/{render_id}").json()
            if answer["data"]["status"] in ("completed", "failed"):
                return dict(answer["data"])
            time.sleep(0.1)
        raise TimeoutError(f"render {render_id} not finished in {deadline_s} s")


def texts(events: list[dict[str, Any]]) -> list[str]:
    return [
        part["text"]
        for event in events
        if not event.get("partial")
        for part in event.get("content", {}).get("parts", [])
        if "text" in part
    ]


def tool_names(events: list[dict[str, Any]]) -> list[str]:
    return [
        part["functionCall"]["name"]
        for event in events
        for part in event.get("content", {}).get("parts", [])
        if "functionCall" in part
    ]


def make_image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> Path:
    Image.new("RGB", size, color).save(path, format="PNG")
    return path
