"""The FastAPI application factory (`uvicorn api.app:create_app --factory`)."""

import logging

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import assets, batches, credits, health, jobs
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (small limits, temporary storage)."""
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level)
    app = FastAPI(
        title="nemo-batch",
        version="0.1.0",
        summary="Batch product videos on the NemoVideo backend.",
    )
    app.state.settings = settings
    install_error_handlers(app)
    for module in (health, assets, batches, jobs, credits):
        app.include_router(module.router)
    return app
