"""create_app(config): the FastAPI app serving nemo-api.md plus the /_emulator control routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.config import EmulatorConfig
from emulator.routes import accounts, agent, control, export, uploads
from emulator.routes.deps import (
    EnvelopeError,
    HttpError,
    envelope_error_handler,
    http_error_handler,
)
from emulator.runtime import Emulator


class RequestStats:
    """Counts every contract request by route template and status (plus envelope code)."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                name = f"{scope['method']} {getattr(route, 'path', 'unmatched')}"
                code = scope.get("emulator.code")
                status = f"{message['status']}" + (f":{code}" if code else "")
                self.emulator.stats.requests[name][status] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


def create_app(config: EmulatorConfig) -> FastAPI:
    emulator = Emulator(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for folder in (emulator.media_dir, emulator.tmp_dir, config.data_dir / "renders"):
            folder.mkdir(parents=True, exist_ok=True)
        yield
        emulator.reset()

    app = FastAPI(title="NemoVideo emulator", lifespan=lifespan)
    app.state.emulator = emulator
    app.add_exception_handler(EnvelopeError, envelope_error_handler)
    app.add_exception_handler(HttpError, http_error_handler)
    for module in (accounts, uploads, agent, export):
        app.include_router(module.router)
    app.include_router(control.router)
    app.include_router(control.media_router)
    app.add_middleware(RequestStats, emulator=emulator)
    return app
